"""Every rule kind of the matrix registry has a checker in `check`, or says which command reads it instead."""

from __future__ import annotations

import envdoctor._check  # noqa: F401 - registers the checkers
from envdoctor._check.registry import CHECKERS, ELSEWHERE, checks
from envdoctor._matrix.kinds import KINDS


def test_every_kind_is_checked_or_declared_elsewhere() -> None:
    sections = {k.section for k in KINDS}
    assert set(CHECKERS) | set(ELSEWHERE) == sections
    assert not set(CHECKERS) & set(ELSEWHERE)
    assert {"packages", "gpu.cuda", "model_features"} <= set(CHECKERS)
    assert {"renames", "symptoms", "probes"} <= set(ELSEWHERE)


def test_a_kind_cannot_get_two_checkers() -> None:
    import pytest

    with pytest.raises(ValueError, match="already has a checker"):
        checks("packages")(lambda ctx: ())
