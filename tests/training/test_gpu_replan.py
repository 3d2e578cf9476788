"""The plan's varlen assumption on the GPU, through `envdoctor train`: a packed run on CUDA is estimated without the
mask's repeated k/v because varlen attention takes the packed rows; when varlen comes out off at load time (forced
off here: on the GPU machine it applies to the tiny Llama) the plan is estimated again before the first step.

Skipped where torch sees no CUDA device (CI: the pieces are in test_plan_varlen.py); run on the GPU machine with
`python -m pytest tests/training/test_gpu_replan.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envdoctor._cli import main

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU trainer: needs a CUDA device")


def _train(tiny: dict[str, Path], out: Path) -> int:
    return main(["train", "qlora", "--model", str(tiny["model"]), "--dataset", str(tiny["data"]), "--output",
                 str(out), "--seq-len", "48", "--effective-batch", "2", "--batch-size", "2", "--max-steps", "2",
                 "--lora-r", "4", "--save-steps", "0"])


def test_a_packed_cuda_run_keeps_varlen_and_its_plan(tiny, tmp_path, skip_guard, capsys):
    pytest.importorskip("bitsandbytes")
    assert _train(tiny, tmp_path / "on") == 0
    err = capsys.readouterr().err
    assert "varlen attention: packed documents through flash attention" in err
    assert "varlen attention for the packed documents is off" not in err


def test_a_packed_cuda_run_whose_varlen_is_forced_off_is_replanned_before_the_first_step(
        tiny, tmp_path, skip_guard, capsys, monkeypatch):
    pytest.importorskip("bitsandbytes")
    from envdoctor.training import varlen
    from envdoctor.training.kinds import Outcome

    monkeypatch.setattr(varlen, "use_varlen", lambda model: Outcome(False, "varlen attention off: forced by the test"))
    assert _train(tiny, tmp_path / "off") == 0
    err = capsys.readouterr().err
    note = next(line for line in err.splitlines() if "varlen attention for the packed documents is off" in line)
    assert "(forced by the test)" in note and "memory estimate" in note
