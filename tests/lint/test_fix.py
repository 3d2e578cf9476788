"""lint --fix: LibCST rewrites that keep formatting and comments; what is unsafe is left alone and said."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Lint = Callable[..., tuple[int, str, str]]  # the `lint` fixture of conftest.py

EXPECTED_FIXED = '''\
import transformers as tf
from transformers import AutoModelForCausalLM, TrainingArguments
from trl import SFTConfig, SFTTrainer

MAX_LEN = 64


def build(model, tok, ds):
    args = TrainingArguments(
        output_dir="out",
        eval_strategy="no",  # keep this comment
        use_cpu=True,
    )
    cfg = SFTConfig(output_dir="out", use_cpu=True, bf16=False, report_to="none", max_steps=1, max_length=MAX_LEN, dataset_text_field="text")
    trainer = SFTTrainer(
        model=model,
        args=cfg,
        train_dataset=ds,
        processing_class=tok,
    )
    plain = tf.Trainer(model=model, args=args, processing_class=tok)
    return trainer, plain
'''


def test_fix_rewrites_keeping_comments_and_the_result_runs(stale_script: Path, tmp_path: Path, lint: Lint) -> None:
    path = stale_script
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == EXPECTED_FIXED
    assert lint(str(path))[0] == 0  # nothing stale is left
    # the rewritten code builds real trainers with the installed transformers/TRL
    probe = Path(__file__).parents[1] / "drift" / "compat_probe.py"
    check = (f"import importlib.util, sys; sys.path.insert(0, {str(probe.parent)!r}); import compat_probe; "
             f"from datasets import Dataset; spec = importlib.util.spec_from_file_location('t', {str(path)!r}); "
             "t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t); "
             "m, tok = compat_probe.tiny_model_and_tokenizer(); "
             "tr, plain = t.build(m, tok, Dataset.from_dict({'text': ['hello world'] * 2})); "
             "assert tr.args.max_length == 64 and tr.args.dataset_text_field == 'text'")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_fix_reports_what_it_cannot_fix(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    path.write_text("from transformers import TrainingArguments\nfrom trl import SFTTrainer\n"
                    "a = TrainingArguments(output_dir='o', overwrite_output_dir=True)\n"
                    "def f(m, n):\n    return SFTTrainer(model=m, max_seq_length=n)\n"
                    "SFTTrainer(model='m', args=a, packing=True)\n", encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1
    assert f"NOT FIXED {path}:3:39: overwrite_output_dir: no equivalent" in out
    assert f"NOT FIXED {path}:5:32: max_seq_length: there is no args= to put it in" in out
    # the seeds' shape: args= is a TrainingArguments, which SFTConfig subclasses with other defaults
    assert (f"NOT FIXED {path}:6:31: packing: args=a is a TrainingArguments: build it as SFTConfig(...) with "
            "packing=...") in out


def test_unsafe_move_is_left_alone(tmp_path: Path, lint: Lint) -> None:
    src = ("from trl import SFTConfig, SFTTrainer\ncfg = SFTConfig(output_dir='o')\n"
           "def f(m, n):\n    return SFTTrainer(model=m, args=cfg, max_seq_length=n * 2)\n")
    path = tmp_path / "t.py"
    path.write_text(src, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1 and "may not exist where cfg is built" in out
    assert path.read_text(encoding="utf-8") == src


def test_notebook_cells_magics_and_fix(tmp_path: Path, lint: Lint) -> None:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# QLoRA\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["!pip install -q trl==0.8.6\n", "from transformers import TrainingArguments\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["%time x = 1\n", "args = TrainingArguments(output_dir='o', evaluation_strategy='no')\n",
                    "TrainingArguments?"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["%%bash\n", "echo evaluation_strategy=no\n"]},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    code, out, _ = lint(str(path))
    assert code == 1 and f"{path} [cell 2]:2:42: error: TrainingArguments(evaluation_strategy=)" in out
    assert lint("--fix", str(path))[0] == 0
    fixed = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert "".join(fixed[2]["source"]) == ("%time x = 1\nargs = TrainingArguments(output_dir='o', "
                                           "eval_strategy='no')\nTrainingArguments?")
    assert fixed[1]["source"] == cells[1]["source"] and fixed[3]["source"] == cells[3]["source"]


def test_fix_without_libcst_says_how_to_install(tmp_path: Path, lint: Lint,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.py"
    path.write_text("from transformers import TrainingArguments\nTrainingArguments(evaluation_strategy='no')\n",
                    encoding="utf-8")
    monkeypatch.setitem(sys.modules, "libcst", None)
    code, _, err = lint("--fix", str(path))
    assert code == 2 and "pip install 'envdoctor[lint]'" in err


def test_move_into_a_config_built_over_several_lines(tmp_path: Path, lint: Lint) -> None:
    """The config call is found through a dotted name that spans lines (LibCST node -> the `ast` finder)."""
    path = tmp_path / "t.py"
    path.write_text("import trl\ndef f(m):\n    cfg = (trl\n           .SFTConfig(output_dir='o'))\n"
                    "    return trl.SFTTrainer(model=m, args=cfg, max_seq_length=8)\n", encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8").splitlines()[3:] == [
        "           .SFTConfig(output_dir='o', max_length=8))", "    return trl.SFTTrainer(model=m, args=cfg)"]
