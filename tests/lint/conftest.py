"""Fixtures for the lint tests: the CLI with captured output, and a script with every kind of stale keyword."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from envdoctor._cli import main

SCRIPT = '''\
import transformers as tf
from transformers import AutoModelForCausalLM, TrainingArguments
from trl import SFTConfig, SFTTrainer

MAX_LEN = 64


def build(model, tok, ds):
    args = TrainingArguments(
        output_dir="out",
        evaluation_strategy="no",  # keep this comment
        use_cpu=True,
    )
    cfg = SFTConfig(output_dir="out", use_cpu=True, bf16=False, report_to="none", max_steps=1)
    trainer = SFTTrainer(
        model=model,
        args=cfg,
        train_dataset=ds,
        tokenizer=tok,
        max_seq_length=MAX_LEN,  # moved into cfg
        dataset_text_field="text",
    )
    plain = tf.Trainer(model=model, args=args, tokenizer=tok)
    return trainer, plain
'''

Lint = Callable[..., tuple[int, str, str]]


@pytest.fixture
def lint(capsys: pytest.CaptureFixture[str]) -> Lint:
    """lint(*argv) -> (exit code, stdout, stderr) of `envdoctor lint ARGV`."""
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["lint", *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def stale_script(tmp_path: Path) -> Path:
    """SCRIPT written to tmp_path/train.py."""
    path = tmp_path / "train.py"
    path.write_text(SCRIPT, encoding="utf-8")
    return path
