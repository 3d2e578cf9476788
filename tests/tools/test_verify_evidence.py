"""tools/verify_evidence.py reads the cited lines from wheels (fake ones here; real ones in the network test)."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("verify_evidence", ROOT / "tools" / "verify_evidence.py")
assert _spec is not None and _spec.loader is not None
ve = importlib.util.module_from_spec(_spec)
sys.modules["verify_evidence"] = ve
_spec.loader.exec_module(ve)

SOURCE = 'import os\n\nROPE = {\n    "llama3": _compute_llama3_parameters,\n}\nraise SystemExit("read, never run")\n'


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    with zipfile.ZipFile(folder / "fake_pkg-1.0-py3-none-any.whl", "w") as z:
        z.writestr("fake_pkg/rope.py", SOURCE)
        z.writestr("fake_pkg-1.0.dist-info/METADATA", "Name: fake-pkg\nVersion: 1.0\nRequires-Dist: torch>=2\n")
    return folder


def _verdicts(wheels: Path, *texts: str, label: str = "") -> list[tuple[bool, str]]:
    cited = [ve.Cited("m@1 rule", t, label) for t in texts]
    return [(v.ok, v.reason) for v in ve.verify(cited, [wheels], wheels / "cache", offline=True)]


def test_a_cited_line_that_holds_the_quoted_text_passes(wheels: Path) -> None:
    assert _verdicts(wheels, 'fake-pkg==1.0:fake_pkg/rope.py:L4 "\\"llama3\\": _compute_llama3"',
                     'fake-pkg==1.0:fake_pkg-1.0.dist-info/METADATA:L3 "Requires-Dist: torch>=2"',
                     "fake-pkg==1.0:fake_pkg/rope.py:L3-L5 the llama3 entry",
                     'fake-pkg==1.0:fake_pkg/rope.py !"yarn"', "https://github.com/x/y") == [(True, "")] * 5


@pytest.mark.parametrize(("text", "why"), [
    pytest.param('fake-pkg==1.0:fake_pkg/rope.py:L3 "llama3"', "do not contain 'llama3'", id="wrong-line"),
    pytest.param('fake-pkg==1.0:fake_pkg/rope.py:L40 "llama3"', "has 6 lines, not 40", id="past-the-end"),
    pytest.param('fake-pkg==1.0:fake_pkg/other.py:L1 "x"', "has no file fake_pkg/other.py", id="no-file"),
    pytest.param('fake-pkg==1.0:fake_pkg/rope.py !"llama3"', "contains 'llama3' (line 4)", id="not-absent"),
    pytest.param("fake-pkg==1.0:fake_pkg/rope.py:L1 yarn scaling", "name none of yarn, scaling", id="no-key-word"),
    pytest.param('fake-pkg==2.0:fake_pkg/rope.py:L4 "llama3"', "no wheel of fake-pkg==2.0 here (--offline)",
                 id="no-wheel"),
    pytest.param("fake_pkg rope.py L4 (FACTS.md §2)", "outside the repository", id="outside"),
    pytest.param("fake_pkg 1.0 rope.py L4", "neither a wheel reference", id="free-text"),
])
def test_each_failure_says_why(wheels: Path, text: str, why: str) -> None:
    [(ok, reason)] = _verdicts(wheels, text)
    assert not ok and why in reason


def test_main_exits_1_on_a_failure_and_prints_it(wheels: Path, tmp_path: Path, write_matrix,  # type: ignore[no-untyped-def]
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write_matrix('[[packages]]\nname = "torch"\nreason = "r"\n'
                        "evidence = ['fake-pkg==1.0:fake_pkg-1.0.dist-info/METADATA:L3 \"torch>=3\"']\n")
    assert ve.main([str(path), "--wheels", str(wheels), "--offline"]) == 1
    out = capsys.readouterr().out
    assert "FAIL test@1.0 packages[torch]" in out and "0 of 1 citations verified" in out


@pytest.mark.network
def test_a_sample_of_the_bundled_evidence_in_the_real_wheels(tmp_path: Path) -> None:
    """Downloads the few small wheels a sample of hf-stack's and drift's citations name, and checks every line."""
    cited = [c for c in ve.citations(["hf-stack", "drift"]) if c.text.startswith(("trl==1.16.0", "trl==0.12.2"))]
    assert len(cited) >= 5
    failed = [(v.cited.text, v.reason) for v in ve.verify(cited, [], tmp_path) if not v.ok]
    assert failed == []
