"""The probe registry's vocabulary: statuses are an enum whose values are what certificates record."""

from __future__ import annotations

import json

import pytest

from envdoctor._certify.registry import Outcome, ProbeStatus, register_probe
from envdoctor._certify.runner import ProbeResult


def test_plain_strings_become_the_enum_and_unknown_ones_are_refused() -> None:
    assert Outcome("pass", "ok").status is ProbeStatus.PASS
    assert Outcome.skipped("no GPU").status is ProbeStatus.SKIPPED
    assert ProbeResult("x", 1, "inconclusive", "timed out").status is ProbeStatus.INCONCLUSIVE
    with pytest.raises(ValueError, match="'maybe'"):
        Outcome("maybe", "?")  # type: ignore[arg-type]


def test_the_status_reads_and_serialises_as_its_value() -> None:
    res = ProbeResult("imports", 1, ProbeStatus.FAIL, "ImportError")
    assert f"{res.status}" == str(res.status) == "fail"
    assert json.loads(json.dumps(res.to_dict()))["status"] == "fail" and type(res.to_dict()["status"]) is str


@pytest.mark.parametrize(("status", "ok"), [(ProbeStatus.PASS, True), (ProbeStatus.SKIPPED, True),
                                            (ProbeStatus.FAIL, False), (ProbeStatus.INCONCLUSIVE, False)])
def test_which_statuses_let_a_certificate_be_written(status: ProbeStatus, ok: bool) -> None:
    assert status.ok is ok


def test_register_refuses_bad_tiers_and_gpu_needs() -> None:
    with pytest.raises(ValueError, match="tier must be 0 to 3"):
        register_probe("x", 4)
    with pytest.raises(ValueError, match="gpu must be"):
        register_probe("x", 1, gpu="maybe")  # type: ignore[arg-type]
