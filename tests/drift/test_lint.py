"""envdoctor lint: stale keywords in scripts and notebooks, --fix with LibCST, judged against real versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["lint", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_reports_every_stale_keyword_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT, encoding="utf-8")
    code, out, _ = run_cli(capsys, str(path), "--format", "json")
    data: dict[str, Any] = json.loads(out)
    stale = [(i["line"], i["keyword"], i["status"], i["new"]) for i in data["issues"] if i["severity"] != "info"]
    assert code == 1
    assert stale == [(11, "evaluation_strategy", "removed", "eval_strategy"), (19, "tokenizer", "removed",
                      "processing_class"), (20, "max_seq_length", "removed", "max_length"),
                     (21, "dataset_text_field", "removed", "dataset_text_field"), (23, "tokenizer", "removed",
                                                                                   "processing_class")]
    assert data["versions"]["transformers"] and data["version_sources"]["trl"] == "installed"


def test_text_format_names_file_line_old_new_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT, encoding="utf-8")
    code, out, _ = run_cli(capsys, str(path))
    line = next(x for x in out.splitlines() if ":20:" in x)
    assert line.startswith(f"{path}:20:9: error: SFTTrainer(max_seq_length=) -> SFTTrainer(args=SFTConfig(max_length=))")
    assert "TRL 0.13.0 removed max_seq_length" in line
    assert out.splitlines()[-1].startswith("5 stale keywords in 1 file (judged against transformers 5.")


def test_fix_rewrites_keeping_comments_and_the_result_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT, encoding="utf-8")
    code, out, _ = run_cli(capsys, "--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == EXPECTED_FIXED
    assert run_cli(capsys, str(path))[0] == 0  # nothing stale is left
    # the rewritten code builds real trainers with the installed transformers/TRL
    probe = Path(__file__).with_name("compat_probe.py")
    check = (f"import importlib.util, sys; sys.path.insert(0, {str(probe.parent)!r}); import compat_probe; "
             f"from datasets import Dataset; spec = importlib.util.spec_from_file_location('t', {str(path)!r}); "
             "t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t); "
             "m, tok = compat_probe.tiny_model_and_tokenizer(); "
             "tr, plain = t.build(m, tok, Dataset.from_dict({'text': ['hello world'] * 2})); "
             "assert tr.args.max_length == 64 and tr.args.dataset_text_field == 'text'")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_fix_reports_what_it_cannot_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.py"
    path.write_text("from transformers import TrainingArguments\nfrom trl import SFTTrainer\n"
                    "a = TrainingArguments(output_dir='o', overwrite_output_dir=True)\n"
                    "def f(m, n):\n    return SFTTrainer(model=m, max_seq_length=n)\n"
                    "SFTTrainer(model='m', args=a, packing=True)\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "--fix", str(path))
    assert code == 1
    assert f"NOT FIXED {path}:3:39: overwrite_output_dir: no equivalent" in out
    assert f"NOT FIXED {path}:5:32: max_seq_length: there is no args= to put it in" in out
    # the seeds' shape: args= is a TrainingArguments, which SFTConfig subclasses with other defaults
    assert (f"NOT FIXED {path}:6:31: packing: args=a is a TrainingArguments: build it as SFTConfig(...) with "
            "packing=...") in out


def test_unsafe_move_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = ("from trl import SFTConfig, SFTTrainer\ncfg = SFTConfig(output_dir='o')\n"
           "def f(m, n):\n    return SFTTrainer(model=m, args=cfg, max_seq_length=n * 2)\n")
    path = tmp_path / "t.py"
    path.write_text(src, encoding="utf-8")
    code, out, _ = run_cli(capsys, "--fix", str(path))
    assert code == 1 and "may not exist where cfg is built" in out
    assert path.read_text(encoding="utf-8") == src


def test_notebook_cells_magics_and_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
    code, out, _ = run_cli(capsys, str(path))
    assert code == 1 and f"{path} [cell 2]:2:42: error: TrainingArguments(evaluation_strategy=)" in out
    assert run_cli(capsys, "--fix", str(path))[0] == 0
    fixed = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert "".join(fixed[2]["source"]) == ("%time x = 1\nargs = TrainingArguments(output_dir='o', "
                                           "eval_strategy='no')\nTrainingArguments?")
    assert fixed[1]["source"] == cells[1]["source"] and fixed[3]["source"] == cells[3]["source"]


def test_matrix_pins_judge_instead_of_installed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               write_matrix: Any) -> None:
    m = write_matrix('extends = "drift"\n[[packages]]\nname = "transformers"\nspecifier = "==4.40.2"\nreason = "r"\n'
                     'evidence = ["e"]\n[[packages]]\nname = "trl"\nspecifier = "==0.12.2"\nreason = "r"\n'
                     'evidence = ["e"]\n')
    path = tmp_path / "new_style.py"
    path.write_text("from transformers import TrainingArguments\nfrom trl import SFTConfig\n"
                    "a = TrainingArguments(output_dir='o', eval_strategy='no')\n"
                    "c = SFTConfig(output_dir='o', max_length=512)\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "--matrix", str(m), "--fix", str(path))
    assert code == 0, out
    assert "TrainingArguments(eval_strategy=) -> TrainingArguments(evaluation_strategy=)" in out
    assert path.read_text(encoding="utf-8").splitlines()[2:] == [
        "a = TrainingArguments(output_dir='o', evaluation_strategy='no')",
        "c = SFTConfig(output_dir='o', max_seq_length=512)"]


@pytest.mark.slow
def test_fixed_for_old_pins_runs_on_the_old_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 old_pair_python: str) -> None:
    """New-style code, linted with --fix against transformers 4.46.3 / trl 0.12.2 pins, runs in that venv."""
    matrix = tmp_path / "old.toml"
    matrix.write_text('schema_version = 1\nname = "old"\nversion = "1.0"\nextends = "drift"\n'
                      '[[packages]]\nname = "transformers"\nspecifier = "==4.46.3"\nreason = "r"\nevidence = ["e"]\n'
                      '[[packages]]\nname = "trl"\nspecifier = "==0.12.2"\nreason = "r"\nevidence = ["e"]\n',
                      encoding="utf-8")
    script = tmp_path / "s.py"
    script.write_text("from trl import SFTConfig\n"
                      "cfg = SFTConfig(output_dir='o', max_length=77, use_cpu=True)\n"
                      "assert cfg.max_seq_length == 77\n", encoding="utf-8")
    assert run_cli(capsys, "--matrix", str(matrix), "--fix", str(script))[0] == 0
    proc = subprocess.run([old_pair_python, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_folder_recursion_skips_virtualenvs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "venv" / "lib").mkdir(parents=True)
    (tmp_path / "venv" / "lib" / "x.py").write_text(
        "from transformers import TrainingArguments\nTrainingArguments(evaluation_strategy='no')\n", encoding="utf-8")
    (tmp_path / "ok.py").write_text("print('hi')\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, str(tmp_path))
    assert code == 0 and out.startswith("no stale keywords in 1 file")


@pytest.mark.parametrize(("name", "content", "needle"), [
    pytest.param("missing.py", None, "no such file or folder", id="missing"),
    pytest.param("notes.txt", "x", "not a .py file or .ipynb notebook", id="wrong-suffix"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                      content: str | None, needle: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run_cli(capsys, str(path))
    assert code == 2 and err.count("\n") == 1 and needle in err and str(path) in err and "Traceback" not in err


def test_unreadable_files_are_collected_and_the_rest_still_linted(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """One empty notebook (or a cell that is not an object, or a non-UTF-8 file) in a folder used to abort the run."""
    (tmp_path / "empty.ipynb").write_text("", encoding="utf-8")
    (tmp_path / "odd.ipynb").write_text('{"cells": [1]}', encoding="utf-8")
    (tmp_path / "latin.py").write_bytes(b"x = '\xff'\n")
    (tmp_path / "train.py").write_text("from transformers import TrainingArguments\n"
                                       "TrainingArguments(evaluation_strategy='no')\n", encoding="utf-8")
    code, out, err = run_cli(capsys, str(tmp_path))
    assert code == 1 and err == "" and "Traceback" not in out
    assert f"{tmp_path / 'train.py'}:2:19: error: TrainingArguments(evaluation_strategy=)" in out
    assert f"envdoctor lint: {tmp_path / 'empty.ipynb'}: not a notebook (invalid JSON" in out
    assert f"envdoctor lint: {tmp_path / 'odd.ipynb'}: not a notebook (cells[0] is not an object but int)" in out
    assert f"envdoctor lint: {tmp_path / 'latin.py'}: cannot read" in out
    assert "1 stale keyword in 4 files; 3 could not be read or parsed" in out.splitlines()[-1]
    code, out, err = run_cli(capsys, "--format", "json", str(tmp_path / "odd.ipynb"))
    assert code == 2 and json.loads(out)["errors"] == [f"{tmp_path / 'odd.ipynb'}: not a notebook (cells[0] is not "
                                                       "an object but int)"]


def test_a_file_named_twice_is_linted_and_fixed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.py").write_text("from transformers import TrainingArguments\n"
                                   "TrainingArguments(evaluation_strategy='no')\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "--fix", "t.py", "./t.py", ".")
    assert code == 0 and out.splitlines()[-1].startswith("1 stale keyword in 1 file; fixed 1, left 0")


def test_syntax_error_is_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def f(:\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, str(path))
    assert code == 2 and f"{path}:1: cannot parse" in out


def test_fix_without_libcst_says_how_to_install(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.py"
    path.write_text("from transformers import TrainingArguments\nTrainingArguments(evaluation_strategy='no')\n",
                    encoding="utf-8")
    monkeypatch.setitem(sys.modules, "libcst", None)
    code, _, err = run_cli(capsys, "--fix", str(path))
    assert code == 2 and "pip install 'envdoctor[lint]'" in err
