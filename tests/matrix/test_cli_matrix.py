"""`matrix list`, `matrix show` (text and JSON) and `matrix schema`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envdoctor._cli import main


def test_list_text_marks_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "list"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "llama31@2026.11" in ln)
    assert line.startswith("*") and "current" in line
    assert "broken" in next(ln for ln in out.splitlines() if "llama31@2024.06" in ln)


def test_list_json_includes_user_matrices(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "1.0.toml").write_text(
        'schema_version = 1\nname = "mine"\nversion = "1.0"\nextends = "llama31"\n', encoding="utf-8")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "1.0.toml").write_text('schema_version = 1\nname = "broken"\nversoin = "1.0"\n',
                                                  encoding="utf-8")
    monkeypatch.setenv("ENVDOCTOR_MATRIX_PATH", str(tmp_path))
    assert main(["matrix", "list", "--format", "json"]) == 0
    rows = {r["ref"]: r for r in json.loads(capsys.readouterr().out)["matrices"]}
    assert rows["mine@1.0"]["bundled"] is False and rows["mine@1.0"]["status"] == "current"
    assert rows["broken@1.0"]["status"] == "invalid" and "versoin" in rows["broken@1.0"]["problem"]
    assert rows["llama31@2026.11"]["default"] is True


def test_show_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "show", "colab-axolotl", "--evidence"]) == 0
    out = capsys.readouterr().out
    assert "packages (1. torch from pytorch:cu118):" in out
    assert "axolotl ==0.4.0 +cu118" not in out and "--no-deps" in out
    assert "must be absent:" in out and "evidence: https://github.com/tensorflow/tensorflow/blob/v2.19.0/" in out
    assert main(["matrix", "show", "llama31@2024.12", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["matrix"]
    assert data["name"] == "llama31" and data["version"] == "2024.12"
    assert {p["name"]: p["specifier"] for p in data["packages"]}["tokenizers"] == "==0.20.3"


def test_show_a_bad_user_matrix_lists_every_problem(capsys: pytest.CaptureFixture[str], write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix('[[packages]]\nname = "torch"\nspecifer = ">=2"\nreason = "r"\n\n[pyhton]\nspecifier = ">=3"\n')
    assert main(["matrix", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'specifier'" in err and "did you mean 'python'" in err
    assert "Traceback" not in err


def test_schema_is_json_schema_of_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Matrix" and "packages" in schema["properties"]
    assert schema["$defs"]["KnownBadRule"]["properties"]["with"]
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["PackageRule"]["properties"]["specifier"]["description"].startswith("Allowed versions")


@pytest.mark.parametrize("argv", [["matrix", "list"], ["matrix", "show", "llama31"], ["matrix", "schema"],
                                  ["matrix", "diff", "llama31@2024.06", "llama31@2024.12"]],
                         ids=["list", "show", "schema", "diff"])
def test_every_json_has_sorted_keys(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    args = argv if argv[1] == "schema" else [*argv, "--format", "json"]
    assert main(args) == 0
    text = capsys.readouterr().out
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert argv[1] == "schema" or data["schema_version"] == 1


def test_matrix_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix"]) == 2
    assert "SUBCOMMAND" in capsys.readouterr().out
