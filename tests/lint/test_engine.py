"""The lint engine: every stale keyword at once, judged against installed or pinned versions (through the CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Lint = Callable[..., tuple[int, str, str]]  # the `lint` fixture of conftest.py


def test_reports_every_stale_keyword_at_once(stale_script: Path, lint: Lint) -> None:
    path = stale_script
    code, out, _ = lint(str(path), "--format", "json")
    data: dict[str, Any] = json.loads(out)
    stale = [(i["line"], i["keyword"], i["status"], i["new"]) for i in data["issues"] if i["severity"] != "info"]
    assert code == 1
    assert stale == [(11, "evaluation_strategy", "removed", "eval_strategy"), (19, "tokenizer", "removed",
                      "processing_class"), (20, "max_seq_length", "removed", "max_length"),
                     (21, "dataset_text_field", "removed", "dataset_text_field"), (23, "tokenizer", "removed",
                                                                                   "processing_class")]
    assert data["versions"]["transformers"] and data["version_sources"]["trl"] == "installed"
    assert data["schema_version"] == 1 and list(data) == sorted(data) and list(data["issues"][0]) == sorted(data["issues"][0])
    assert {i["severity"] for i in data["issues"]} == {"error", "info"}


def test_text_format_names_file_line_old_new_and_why(stale_script: Path, lint: Lint) -> None:
    path = stale_script
    code, out, _ = lint(str(path))
    line = next(x for x in out.splitlines() if ":20:" in x)
    assert line.startswith(f"{path}:20:9: error: SFTTrainer(max_seq_length=) -> SFTTrainer(args=SFTConfig(max_length=))")
    assert "TRL 0.13.0 removed max_seq_length" in line
    assert out.splitlines()[-1].startswith("5 stale keywords in 1 file (judged against ")
    assert "transformers 5." in out.splitlines()[-1]


def test_matrix_pins_judge_instead_of_installed(tmp_path: Path, lint: Lint,
                                               write_matrix: Any) -> None:
    m = write_matrix('extends = "drift"\n[[packages]]\nname = "transformers"\nspecifier = "==4.40.2"\nreason = "r"\n'
                     'evidence = ["e"]\n[[packages]]\nname = "trl"\nspecifier = "==0.12.2"\nreason = "r"\n'
                     'evidence = ["e"]\n')
    path = tmp_path / "new_style.py"
    path.write_text("from transformers import TrainingArguments\nfrom trl import SFTConfig\n"
                    "a = TrainingArguments(output_dir='o', eval_strategy='no')\n"
                    "c = SFTConfig(output_dir='o', max_length=512)\n", encoding="utf-8")
    code, out, _ = lint("--matrix", str(m), "--fix", str(path))
    assert code == 0, out
    assert "TrainingArguments(eval_strategy=) -> TrainingArguments(evaluation_strategy=)" in out
    assert path.read_text(encoding="utf-8").splitlines()[2:] == [
        "a = TrainingArguments(output_dir='o', evaluation_strategy='no')",
        "c = SFTConfig(output_dir='o', max_seq_length=512)"]


def test_syntax_error_is_reported_not_raised(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def f(:\n", encoding="utf-8")
    code, out, _ = lint(str(path))
    assert code == 2 and f"{path}:1: cannot parse" in out
