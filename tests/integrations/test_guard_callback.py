"""GuardCallback inside a real `Trainer.train()` on a tiny random Llama: refused without a certificate, runs with one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

PROBES = ('[[packages]]\nname = "packaging"\nreason = "the probe imports it"\n\n'
          '[[probes]]\nname = "imports"\ntier = 1\nparams = { modules = ["packaging"] }\n')


def _trainer(tmp_path: Path, callback: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    rows = [{"input_ids": [i % 60 + k for k in range(8)], "labels": [i % 60 + k for k in range(8)]} for i in range(8)]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                             report_to="none", use_cpu=True, save_strategy="no", logging_strategy="no")
    return Trainer(model=LlamaForCausalLM(cfg), args=args, train_dataset=rows, callbacks=[callback])


@pytest.fixture
def empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No certificate anywhere: an isolated cache, and the guard not skipped."""
    monkeypatch.delenv("ENVDOCTOR_SKIP_GUARD", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ENVDOCTOR_CACHE_DIR", str(tmp_path / "xdg" / "envdoctor"))


def test_refuses_before_the_first_step_without_a_certificate(tmp_path, empty_store, capsys):
    from envdoctor.errors import NotCertifiedError
    from envdoctor.integrations.transformers import GuardCallback

    trainer = _trainer(tmp_path, GuardCallback(matrix="llama31", tier=2))
    with pytest.raises(NotCertifiedError):
        trainer.train()
    assert trainer.state.global_step == 0
    err = capsys.readouterr().err
    assert "training refused before the first step" in err and "envdoctor certify" in err


def test_lets_training_run_when_certified(tmp_path, empty_store, write_matrix, capsys):
    """The pass case with a real certificate: a scratch matrix whose one tier-1 probe imports packaging (seconds)."""
    from envdoctor._certify.certify import certify_environment
    from envdoctor.integrations.transformers import GuardCallback

    matrix = str(write_matrix(PROBES))
    assert certify_environment(matrix, tier=1, device="cpu").certified
    callback = GuardCallback(matrix=matrix, tier=1, device="cpu")
    trainer = _trainer(tmp_path, callback)
    trainer.train()
    assert trainer.state.global_step == 2
    assert callback.certificate is not None and callback.certificate.matrix == "test@1.0"
    assert f"{matrix} tier 1: certified" in capsys.readouterr().err


def test_import_envdoctor_does_not_import_transformers():
    import subprocess
    import sys

    code = "import envdoctor, sys; print('transformers' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
