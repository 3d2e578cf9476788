"""`matrix diff`: what moved between two matrices, from what to what, and the reason recorded for it."""

from __future__ import annotations

import json

import pytest

from envdoctor._cli import main
from envdoctor._matrix.diff import diff
from envdoctor._matrix.loader import load_matrix


def test_the_llama31_upgrade_reads_as_its_story() -> None:
    d = diff(load_matrix("llama31@2024.06"), load_matrix("llama31@2024.12"))
    by = {(c.section, c.key): c for c in d.changes}
    tf = by[("packages", "transformers")]
    assert (tf.kind, tf.old, tf.new) == ("changed", "==4.41.0", "==4.46.3")
    assert "Llama-3.1" in (tf.reason or "") and "4.43.0" in (tf.reason or "")
    assert "cannot load Llama-3.1" in (tf.old_reason or "")
    tok = by[("packages", "tokenizers")]
    assert (tok.old, tok.new) == ("==0.19.1", "==0.20.3") and "0.21.0" in (tok.reason or "")
    assert by[("packages", "numpy")].kind == "removed"
    assert by[("status", "status")].old == "broken"
    assert ("known_bad", "tokenizers==0.21.0 with transformers==4.46.3") in by


def test_a_matrix_does_not_differ_from_itself() -> None:
    m = load_matrix("galore-trl086")
    assert diff(m, m).changes == ()


def test_cli_diff_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "diff", "llama31@2024.06", "llama31@2024.12", "--evidence"]) == 0
    out = capsys.readouterr().out
    assert "~ transformers ==4.41.0 -> ==4.46.3" in out
    assert "why: The upgrade from 4.41.0 that makes Llama-3.1 load" in out
    assert "evidence: transformers==4.46.3:transformers-4.46.3.dist-info/METADATA:L31" in out
    assert main(["matrix", "diff", "llama31@2024.12", "llama31@2026.11", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["from"] == "llama31@2024.12" and data["to"] == "llama31@2026.11"
    trl = next(c for c in data["changes"] if c["key"] == "trl")
    assert trl["old"] == "==0.12.2" and trl["new"] == "<2,>=1.0"


def test_cli_diff_unknown_matrix_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "diff", "llama31@2024.06", "llama31@1999.01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no version '1999.01'" in err
