"""The versions lint and compat judge against: installed ones, or the ones a matrix pins."""

from __future__ import annotations

from typing import Any

from packaging.version import Version

from envdoctor._drift.versions import for_matrix, installed
from envdoctor._matrix.loader import load_matrix


def test_installed_reads_metadata_and_missing_is_none() -> None:
    found = installed(["Packaging", "no-such-package-here"])
    assert isinstance(found["packaging"], Version) and found["no-such-package-here"] is None


def test_pins_win_and_a_range_without_the_installed_version_is_not_judged(write_matrix: Any) -> None:
    m = load_matrix(str(write_matrix(
        'extends = "drift"\n'
        '[[packages]]\nname = "transformers"\nspecifier = "==4.40.2"\nreason = "r"\nevidence = ["e"]\n'
        '[[packages]]\nname = "trl"\nspecifier = "<0.1"\nreason = "r"\nevidence = ["e"]\n')))
    v = for_matrix(m, ["transformers", "trl", "packaging"], use_pins=True)
    assert v.versions["transformers"] == Version("4.40.2") and v.sources["transformers"] == f"matrix {m.ref}"
    assert v.versions["trl"] is None and v.notes[0].startswith("trl: the matrix allows <0.1 and pins no single version")
    assert v.sources["packaging"] == "installed" and v.versions["packaging"] is not None
    assert "transformers 4.40.2 (matrix " in v.describe() and "trl" not in v.describe()
    plain = for_matrix(m, ["transformers"], use_pins=False)
    assert plain.sources == {"transformers": "installed"} and plain.versions["transformers"] != Version("4.40.2")
