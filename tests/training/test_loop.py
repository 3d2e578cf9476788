"""The loop's pieces on their own: the learning-rate schedule, checkpoint discovery, and the resumable data order."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from envdoctor.training.checkpoints import last_checkpoint as _last_checkpoint
from envdoctor.training.data import Example
from envdoctor.training.loop import _micro_batches
from envdoctor.training.optim import scheduler as _scheduler


def _lrs(warmup: int, total: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = _scheduler(opt, warmup, total)
    out = []
    for _ in range(total):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_schedule_warms_up_then_decays_linearly_to_zero() -> None:
    assert _lrs(0, 4) == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert _lrs(2, 4) == pytest.approx([1 / 3 * 1.0, 2 / 3 * 0.75, 0.5, 0.25])


def test_last_checkpoint_needs_a_state_file(tmp_path: Path) -> None:
    for step, complete in ((2, True), (4, True), (6, False)):  # checkpoint-6 was interrupted while saving
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "state.json").write_text("{}", encoding="utf-8")
    (tmp_path / "checkpoint-x").mkdir()
    assert _last_checkpoint(tmp_path) == (4, tmp_path / "checkpoint-4")
    assert _last_checkpoint(tmp_path / "checkpoint-x") is None


def test_micro_batches_resume_in_the_same_order() -> None:
    """Resume skips the micro-batches already consumed: the rest of the stream is what the first run saw."""
    examples = [Example((i, i), (i, i), (0, 1)) for i in range(7)]
    first = [tuple(e.input_ids[0] for e in group) for group, _ in itertools.islice(_micro_batches(examples, 2, 5), 9)]
    resumed = _micro_batches(examples, 2, 5)
    for _ in range(4):
        next(resumed)
    assert [tuple(e.input_ids[0] for e in group) for group, _ in itertools.islice(resumed, 5)] == first[4:]
    epochs = [epoch for _, epoch in itertools.islice(_micro_batches(examples, 2, 5), 9)]
    assert epochs == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # 7 examples, batch 2: three full batches per epoch


# --- the loop itself, on CPU: a tiny LoRA run whose host work is recorded -------------------------------------------

class _Stop(Exception):
    """Ends a run from its reporter, as an interruption would."""


class _StopAt:
    """A reporter that interrupts the run when step `at` finishes (before that step is logged or checkpointed)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def start(self, total: int, done: int) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...

    def step(self, step: int, loss: float, tokens_per_s: float) -> None:
        if step == self.at:
            raise _Stop


def _run(tiny: dict[str, Path], out: Path, monkeypatch: pytest.MonkeyPatch, *, steps: int = 4,
         prefetch: bool = True, stop_at: int | None = None,
         ahead: bool = False) -> tuple[list[tuple], list[dict], object, list]:
    """Train a fresh tiny LoRA (batch 1, 2 micro-batches a step, 5 examples an epoch) and record, in order, every
    collation ("collate"), every forward ("forward", its input_ids) and every wait for the step's loss ("wait").

    Returns (events, the logged steps, the plan, the examples). `prefetch=False` bypasses the collate-ahead, so every
    micro-batch is collated when it is taken: the order the loop had before it prefetched. `ahead=True` lets the loop
    queue the next step before reading a step's loss, as it does with a captured CUDA graph (none on the CPU).
    """
    from transformers import AutoTokenizer

    from envdoctor._env.gpu import GpuInfo
    from envdoctor.training import fast, loop, runner
    from envdoctor.training.config import TrainConfig
    from envdoctor.training.memory import shape_from_config
    from envdoctor.training.model import add_lora, load_base

    events: list[tuple] = []
    collate, forward, wait = loop.cpu_tensors, fast.causal_lm_loss, loop._wait

    def collating(*args, **kwargs):  # type: ignore[no-untyped-def]
        events.append(("collate",))
        return collate(*args, **kwargs)

    def forwarding(model, input_ids, *args, **kwargs):  # type: ignore[no-untyped-def]
        events.append(("forward", input_ids.tolist()))
        return forward(model, input_ids, *args, **kwargs)

    def waiting(*args, **kwargs):  # type: ignore[no-untyped-def]
        events.append(("wait",))
        return wait(*args, **kwargs)

    monkeypatch.setattr(loop, "cpu_tensors", collating)
    monkeypatch.setattr(fast, "causal_lm_loss", forwarding)  # dist.loss_module looks it up when the loop is set up
    monkeypatch.setattr(loop, "_wait", waiting)
    if not prefetch:
        monkeypatch.setattr(loop._Feed, "ahead", lambda self: None)
    if ahead:
        monkeypatch.setattr(loop, "_ahead_allowed", lambda run: True)
    tok = AutoTokenizer.from_pretrained(tiny["model"])
    cfg = TrainConfig(method="qlora", model=str(tiny["model"]), dataset=str(tiny["data"]), output=str(out),
                      max_steps=steps, seq_len=48, batch_size=1, effective_batch=2, lora_r=4, lora_dropout=0.0,
                      save_steps=2)
    plan = runner.plan_run(cfg, shape_from_config(runner.model_config(cfg.model)), GpuInfo(False, reason="cpu"))
    assert (plan.batch, plan.grad_accum) == (1, 2)
    examples, _ = runner.load_data(cfg, tok, plan.seq, runner.NullReporter())
    examples = examples[:5]  # an epoch ends inside step 3: its micro-batches are epoch 0's last and epoch 1's first
    torch.manual_seed(0)
    model = load_base(cfg.model, quantize="none", dtype="fp32", device="cpu", attn="sdpa")
    model = add_lora(model, cfg.lora_r, cfg.lora_alpha, 0.0, list(cfg.lora_targets))
    try:
        loop.train_loop(cfg, plan, model, tok, examples, _StopAt(stop_at) if stop_at else None)
    except _Stop:
        pass
    monkeypatch.undo()
    logged = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return events, logged, plan, examples


def _forwards(events: list[tuple]) -> list[list[list[int]]]:
    return [e[1] for e in events if e[0] == "forward"]


def _kinds(events: list[tuple]) -> list[str]:
    return [e[0] for e in events]


@pytest.mark.slow
def test_the_next_micro_batch_is_collated_while_the_last_one_runs(tiny, tmp_path, monkeypatch):
    """Each micro-batch is collated right after the forward/backward before it is launched, the next step's first
    one before the host waits for this step's loss; nothing is collated past the run's last micro-batch."""
    events, _, _, _ = _run(tiny, tmp_path / "ahead", monkeypatch, steps=3)
    n, accum = 3 * 2, 2
    want = ["collate"]
    for i in range(n):
        want += ["forward"] + (["collate"] if i + 1 < n else []) + (["wait"] if (i + 1) % accum == 0 else [])
    assert _kinds(events) == want
    # bypassed, the host collates only once the step before has been waited for: what the prefetch changes
    events, _, _, _ = _run(tiny, tmp_path / "bypassed", monkeypatch, steps=3, prefetch=False)
    assert _kinds(events) == ["collate", "forward", "collate", "forward", "wait"] * 3


@pytest.mark.slow
def test_prefetch_trains_the_same_micro_batches_and_losses(tiny, tmp_path, monkeypatch):
    """The data order is the stream's (data.batches, epoch after epoch), each step reports its last micro-batch's
    epoch and the same token counts, and the losses are the ones of a run that collates on demand."""
    from envdoctor.training.data import batches, collate

    events, logged, plan, examples = _run(tiny, tmp_path / "ahead", monkeypatch)
    stream = [(g, epoch) for epoch in range(2) for g in batches(examples, plan.batch, 0, epoch)]
    assert _forwards(events) == [collate(g, 0)["input_ids"] for g, _ in stream[:8]]
    assert [r["epoch"] for r in logged] == [stream[2 * s + 1][1] for s in range(4)] == [0, 0, 1, 1]
    trained = [sum(lab != -100 for g, _ in stream[:2 * s + 2] for e in g for lab in e.labels[1:]) for s in range(4)]
    assert [r["trained_tokens"] for r in logged] == trained
    _, bypassed, _, _ = _run(tiny, tmp_path / "bypassed", monkeypatch, prefetch=False)
    assert [r["loss"] for r in logged] == [r["loss"] for r in bypassed]
    assert [r["trained_tokens"] for r in logged] == [r["trained_tokens"] for r in bypassed]


@pytest.mark.slow
def test_a_resumed_run_trains_the_micro_batches_the_uninterrupted_one_did(tiny, tmp_path, monkeypatch):
    """Interrupted in step 3 (its first micro-batch already collated ahead), the run resumes from checkpoint-2 and
    feeds steps 3 and 4 exactly what an uninterrupted run fed them, to the same losses."""
    events, logged, _, _ = _run(tiny, tmp_path / "whole", monkeypatch)
    cut, _, _, _ = _run(tiny, tmp_path / "cut", monkeypatch, stop_at=3)
    assert (tmp_path / "cut" / "checkpoint-2" / "state.json").is_file()
    assert _forwards(cut) == _forwards(events)[:6]
    resumed, relogged, _, _ = _run(tiny, tmp_path / "cut", monkeypatch)
    assert _forwards(resumed) == _forwards(events)[4:]
    assert _kinds(resumed).count("collate") == 4  # steps 3 and 4: nothing of the skipped ones is collated
    assert [r["step"] for r in relogged] == [1, 2, 3, 4]
    assert [r["loss"] for r in relogged] == pytest.approx([r["loss"] for r in logged], rel=1e-5)


@pytest.mark.slow
def test_the_next_step_is_queued_before_the_loss_is_read_but_never_past_a_checkpoint(tiny, tmp_path, monkeypatch):
    """With the next step queued ahead (the graph path's order), step 2's work runs before step 1's loss is read;
    the checkpoint after step 2 (save_steps 2) and the last step are waited for before anything more is queued,
    so checkpoint-2 holds step 2's weights, and every logged loss and learning rate is the plain order's."""
    events, logged, _, _ = _run(tiny, tmp_path / "ahead", monkeypatch, steps=3, ahead=True)
    work = [k for k in _kinds(events) if k != "collate"]
    assert work == ["forward"] * 4 + ["wait"] * 2 + ["forward"] * 2 + ["wait"]
    plain_events, plain, _, _ = _run(tiny, tmp_path / "plain", monkeypatch, steps=3)
    assert [k for k in _kinds(plain_events) if k != "collate"] == (["forward"] * 2 + ["wait"]) * 3
    assert _forwards(events) == _forwards(plain_events)
    assert [(r["step"], r["loss"], r["lr"]) for r in logged] == [(r["step"], r["loss"], r["lr"]) for r in plain]
    for name in ("adapter_model.safetensors", "optimizer.pt"):
        mine, theirs = (tmp_path / d / "checkpoint-2" / name for d in ("ahead", "plain"))
        if theirs.exists():
            assert mine.read_bytes() == theirs.read_bytes(), name
    assert any((tmp_path / "plain" / "checkpoint-2" / n).exists() for n in ("adapter_model.safetensors", "optimizer.pt"))
