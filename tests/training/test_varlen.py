"""training/varlen.py off the GPU: the document boundaries, and the wiring from the loop's micro-batch to the
attention. On CPU the varlen call runs its per-document SDPA reference; the flash kernel itself is checked against
that reference on the GPU when the lever turns on (use_varlen), and benchmarks/bench_vs_trl.py trains through it."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from envdoctor._env.gpu import GpuInfo, declared  # noqa: E402
from envdoctor.training import varlen  # noqa: E402
from envdoctor.training.data import Example, cpu_tensors  # noqa: E402
from envdoctor.training.fast import causal_lm_loss  # noqa: E402


def _pos(*lengths: int) -> list[int]:
    return [p for n in lengths for p in range(n)]


def test_cu_seqlens_start_at_each_row_and_each_position_restart():
    pos = torch.tensor([_pos(3, 5), _pos(8)])
    assert varlen.cu_seqlens(pos).tolist() == [0, 3, 8, 16]
    assert varlen.cu_seqlens(pos).dtype == torch.int32
    # a row padded to a fixed width: the pads' positions jump (collate numbers them from the row's length), so they
    # are a document of their own, as in transformers' mask: no real token sees them, and they carry no loss
    b = cpu_tensors([Example((5,) * 6, (5,) * 6, tuple(_pos(2, 4)))], pad_id=0, width=10)
    assert varlen.cu_seqlens(b["position_ids"]).tolist() == [0, 2, 6, 10]


def test_fixed_slots_pad_with_empty_documents_and_refuse_too_many():
    pos = torch.tensor([_pos(3, 5)])
    assert varlen.cu_seqlens(pos, slots=4).tolist() == [0, 3, 8, 8, 8]
    with pytest.raises(ValueError, match="3 documents in a micro-batch of at most 2"):
        varlen.cu_seqlens(torch.tensor([_pos(2, 2, 4)]), slots=2)


def test_segments_longer_than_the_longest_document_are_cut_into_pieces():
    # only padding makes a segment longer than the data's longest document; its pieces carry no loss
    b = cpu_tensors([Example((5,) * 6, (5,) * 6, tuple(_pos(2, 4)))], pad_id=0, width=16)
    assert varlen.cu_seqlens(b["position_ids"], max_len=4).tolist() == [0, 2, 6, 10, 14, 16]
    assert varlen.doc_bound([_pos(2, 4), _pos(3, 1)]) == 4


def test_slots_are_the_fullest_rows_together_with_their_padding_pieces():
    rows = [_pos(8), _pos(2, 2, 4), _pos(4, 4), _pos(1, 1, 1, 1, 4)]
    bound = varlen.doc_bound(rows)
    assert bound == 8
    assert varlen.slots_for(rows, 1, 12, bound) == 5 + 2
    assert varlen.slots_for(rows, 2, 12, bound) == 8 + 4
    assert varlen.slots_for(rows, 9, 12, bound) == 11 + 8
    for group in ([rows[3]], [rows[3], rows[1]]):  # the fullest rows padded to a fixed width fit their slots
        b = cpu_tensors([Example((1,) * len(p), (1,) * len(p), tuple(p)) for p in group], pad_id=0, width=12)
        cu = varlen.cu_seqlens(b["position_ids"], varlen.slots_for(rows, len(group), 12, bound), bound)
        assert int(torch.diff(cu).max()) <= bound


def _tiny(attn: str = "sdpa"):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, attn_implementation=attn)
    return LlamaForCausalLM(cfg)


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 64, (2, 24), generator=g)
    pos = torch.tensor([_pos(7, 17), _pos(3, 9, 12)])
    return ids, ids.clone(), pos


def _loss_and_grads(model, fused: bool, docs: bool):  # type: ignore[no-untyped-def]
    ids, labels, pos = _batch()
    model.zero_grad(set_to_none=True)
    loss = causal_lm_loss(model, ids, labels, pos, fused=fused, cu_seqlens=varlen.cu_seqlens(pos) if docs else None)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("fused", [True, False])
def test_the_varlen_path_computes_transformers_packed_sdpa(fused):
    """Same loss and gradients as transformers' own SDPA with its block-diagonal mask from the positions (CPU:
    the per-document reference stands in for the flash kernel)."""
    model = _tiny()
    want, want_g = _loss_and_grads(model, fused, docs=False)
    ok, why = varlen.use_varlen(model)
    assert ok and varlen.active(model), why
    got, got_g = _loss_and_grads(model, fused, docs=True)
    assert torch.allclose(got, want, atol=1e-6)
    assert len(got_g) == len(want_g) and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got_g, want_g, strict=True))
    # without boundaries (eval, generation) it is plain SDPA with the mask: the same numbers again
    again, _ = _loss_and_grads(model, fused, docs=False)
    assert torch.equal(again, want)


def test_cross_document_attention_would_change_the_loss():
    # the property the boundaries carry: one document of the whole row gives another loss
    model = _tiny()
    varlen.use_varlen(model)
    ids, labels, pos = _batch()
    split = causal_lm_loss(model, ids, labels, pos, cu_seqlens=varlen.cu_seqlens(pos))
    whole = causal_lm_loss(model, ids, labels, pos, cu_seqlens=torch.tensor([0, 24, 48], dtype=torch.int32))
    assert not torch.allclose(split, whole, atol=1e-4)


def test_a_model_not_on_sdpa_is_refused_unchanged():
    model = _tiny("eager")
    ok, why = varlen.use_varlen(model)
    assert not ok and "'eager', not sdpa" in why
    assert model.config._attn_implementation == "eager" and not varlen.active(model)


def test_the_runner_turns_it_on_for_cuda_plans_only(monkeypatch):
    """The lever follows the plan's device (CUDA: flash varlen; CPU: no per-document loop) and ENVDOCTOR_VARLEN=0.
    The H200 is declared: no GPU here."""
    from envdoctor.training import dist, runner
    from envdoctor.training.config import TrainConfig
    from envdoctor.training.memory import KNOWN_SHAPES

    cfg = TrainConfig(method="qlora", model="m", dataset="d.jsonl", output="o", max_steps=1)
    shape = KNOWN_SHAPES["llama-3.1-8b"]
    on_gpu = runner.plan_run(cfg, shape, declared("h200"))
    on_cpu = runner.plan_run(cfg, shape, GpuInfo(False, reason="no GPU"))
    assert runner.levers_for(cfg, on_gpu, dist.World()).varlen
    assert not runner.levers_for(cfg, on_cpu, dist.World()).varlen
    monkeypatch.setenv("ENVDOCTOR_VARLEN", "0")
    assert not runner.levers_for(cfg, on_gpu, dist.World()).varlen


def test_row_blocks_follow_checkpointing_and_a_bad_override_is_one_clear_error(monkeypatch):
    from envdoctor.errors import ConfigError
    from envdoctor.training import dist, runner
    from envdoctor.training.config import TrainConfig
    from envdoctor.training.memory import KNOWN_SHAPES

    shape, gpu = KNOWN_SHAPES["llama-3.1-8b"], declared("h200")
    for ckpt, blocks in ((True, 4), (False, 1)):
        cfg = TrainConfig(method="qlora", model="m", dataset="d.jsonl", output="o", max_steps=1, batch_size=1,
                          effective_batch=1, gradient_checkpointing=ckpt)
        assert runner.levers_for(cfg, runner.plan_run(cfg, shape, gpu), dist.World()).dequant_blocks == blocks
    monkeypatch.setenv("ENVDOCTOR_DEQUANT_BLOCKS", "four")
    with pytest.raises(ConfigError, match="ENVDOCTOR_DEQUANT_BLOCKS='four'"):
        runner.levers_for(cfg, runner.plan_run(cfg, shape, gpu), dist.World())


@pytest.mark.slow
def test_the_loop_sends_document_boundaries_and_trains_as_packed_sdpa(tiny, tmp_path, monkeypatch):
    """The training loop, on CPU: with the varlen attention active every micro-batch carries cu_seqlens (the CPU
    reference computes the attention), and the run's per-step losses are packed SDPA's."""
    from envdoctor._env.gpu import GpuInfo
    from envdoctor.training import runner
    from envdoctor.training.config import TrainConfig
    from envdoctor.training.loop import train_loop
    from envdoctor.training.memory import shape_from_config
    from envdoctor.training.model import add_lora, load_base

    seen: list[int] = []
    reference = varlen._reference

    def counting(q, k, v, cu, scale):  # type: ignore[no-untyped-def]
        seen.append(len(cu) - 1)
        return reference(q, k, v, cu, scale)

    monkeypatch.setattr(varlen, "_reference", counting)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["model"])
    losses = []
    for docs in (False, True):
        cfg = TrainConfig(method="qlora", model=str(tiny["model"]), dataset=str(tiny["data"]),
                          output=str(tmp_path / f"run-{docs}"), max_steps=3, seq_len=48, effective_batch=2,
                          lora_r=4, lora_dropout=0.0, save_steps=0)
        plan = runner.plan_run(cfg, shape_from_config(runner.model_config(cfg.model)), GpuInfo(False, reason="cpu"))
        examples, _ = runner.load_data(cfg, tok, plan.seq, runner.NullReporter())
        torch.manual_seed(0)
        model = load_base(cfg.model, quantize="none", dtype="fp32", device="cpu", attn="sdpa")
        model = add_lora(model, cfg.lora_r, cfg.lora_alpha, 0.0, list(cfg.lora_targets))
        if docs:
            assert varlen.use_varlen(model).ok
        model.train()
        train_loop(cfg, plan, model, tok, examples)
        losses.append([json.loads(x)["loss"] for x in (tmp_path / f"run-{docs}" / "metrics.jsonl").read_text().splitlines()
                       if '"loss"' in x and "eval" not in x])
    assert seen and max(seen) > plan.batch  # packed rows: more documents than rows reached the attention
    assert len(losses[0]) == 3 and losses[0] == pytest.approx(losses[1], rel=1e-5)
