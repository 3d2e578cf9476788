"""The loop's pieces on their own: the learning-rate schedule, checkpoint discovery, and the resumable data order."""

from __future__ import annotations

import itertools
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
