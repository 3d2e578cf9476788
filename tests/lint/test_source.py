"""Reading sources: folders, notebooks and bad input; unreadable files are collected, not fatal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

Lint = Callable[..., tuple[int, str, str]]  # the `lint` fixture of conftest.py


def test_folder_recursion_skips_virtualenvs(tmp_path: Path, lint: Lint) -> None:
    (tmp_path / "venv" / "lib").mkdir(parents=True)
    (tmp_path / "venv" / "lib" / "x.py").write_text(
        "from transformers import TrainingArguments\nTrainingArguments(evaluation_strategy='no')\n", encoding="utf-8")
    (tmp_path / "ok.py").write_text("print('hi')\n", encoding="utf-8")
    code, out, _ = lint(str(tmp_path))
    assert code == 0 and out.startswith("no stale keywords in 1 file")


@pytest.mark.parametrize(("name", "content", "needle"), [
    pytest.param("missing.py", None, "no such file or folder", id="missing"),
    pytest.param("notes.txt", "x", "not a .py file or .ipynb notebook", id="wrong-suffix"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, lint: Lint, name: str,
                                      content: str | None, needle: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = lint(str(path))
    assert code == 2 and err.count("\n") == 1 and needle in err and str(path) in err and "Traceback" not in err


def test_unreadable_files_are_collected_and_the_rest_still_linted(tmp_path: Path,
                                                                 lint: Lint) -> None:
    """One empty notebook (or a cell that is not an object, or a non-UTF-8 file) in a folder used to abort the run."""
    (tmp_path / "empty.ipynb").write_text("", encoding="utf-8")
    (tmp_path / "odd.ipynb").write_text('{"cells": [1]}', encoding="utf-8")
    (tmp_path / "latin.py").write_bytes(b"x = '\xff'\n")
    (tmp_path / "train.py").write_text("from transformers import TrainingArguments\n"
                                       "TrainingArguments(evaluation_strategy='no')\n", encoding="utf-8")
    code, out, err = lint(str(tmp_path))
    assert code == 1 and err == "" and "Traceback" not in out
    assert f"{tmp_path / 'train.py'}:2:19: error: TrainingArguments(evaluation_strategy=)" in out
    assert f"envdoctor lint: {tmp_path / 'empty.ipynb'}: not a notebook (invalid JSON" in out
    assert f"envdoctor lint: {tmp_path / 'odd.ipynb'}: not a notebook (cells[0] is not an object but int)" in out
    assert f"envdoctor lint: {tmp_path / 'latin.py'}: cannot read" in out
    assert "1 stale keyword in 4 files; 3 could not be read or parsed" in out.splitlines()[-1]
    code, out, err = lint("--format", "json", str(tmp_path / "odd.ipynb"))
    assert code == 2 and json.loads(out)["errors"] == [f"{tmp_path / 'odd.ipynb'}: not a notebook (cells[0] is not "
                                                       "an object but int)"]


def test_a_file_named_twice_is_linted_and_fixed_once(tmp_path: Path, lint: Lint,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.py").write_text("from transformers import TrainingArguments\n"
                                   "TrainingArguments(evaluation_strategy='no')\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, _ = lint("--fix", "t.py", "./t.py", ".")
    assert code == 0 and out.splitlines()[-1].startswith("1 stale keyword in 1 file; fixed 1, left 0")


def test_a_pip_magic_continued_over_lines_is_masked_and_the_cell_linted(tmp_path: Path, lint: Lint) -> None:
    """Colab notebooks install one package a line (`%pip install -q \\` then `    trl==0.8.6 \\` ...): the
    continuation lines used to be read as Python (unexpected indent) and the whole cell was skipped."""
    src = ["%pip install -q \\\n", "    transformers==4.38.2 \\\n", "    trl==0.8.6\n",
           "from transformers import TrainingArguments\n", "if True:\n", "    !pip install \\\n", "       peft\n",
           "    a = TrainingArguments(output_dir='o', evaluation_strategy='no')\n"]
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src}]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    code, out, _ = lint(str(path))
    assert code == 1 and "cannot parse" not in out
    assert f"{path} [cell 1]:8:43: error: TrainingArguments(evaluation_strategy=)" in out
    assert lint("--fix", str(path))[0] == 0
    fixed = json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"]
    assert fixed == [*src[:7], "    a = TrainingArguments(output_dir='o', eval_strategy='no')\n"]
