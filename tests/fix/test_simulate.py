"""The plan's after-state check asks the one requirement evaluator: extras, `extra !=` and odd markers."""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from envdoctor._fix.simulate import Node, breakages, new_breakages

MARKERS = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
           "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
           "implementation_name": "cpython", "platform_python_implementation": "CPython",
           "platform_release": "", "platform_version": "", "implementation_version": "3.12.3"}


def state(*nodes: Node) -> dict:  # type: ignore[type-arg]
    return {canonicalize_name(n.name): n for n in nodes}


@pytest.mark.parametrize(("line", "broken"), [
    pytest.param('beta>=2; extra == "gpu"', False, id="an extra's requirement is skipped"),
    pytest.param('beta>=2; extra != "gpu"', True, id="extra != applies when no extra is asked for"),
    pytest.param('beta>=2; python_version ~= "foo"', False, id="an odd marker is not a traceback"),
    pytest.param("beta>=2", True, id="plain"),
])
def test_breakages_agree_with_the_requirement_evaluator(line: str, broken: bool) -> None:
    found = breakages(state(Node("alpha", Version("1.0"), (line,)), Node("beta", Version("1.0"), ())), MARKERS)
    assert [b.describe() for b in found] == (
        ["alpha 1.0 requires beta>=2, but beta 1.0 would be installed"] if broken else [])


def test_a_missing_requirement_and_only_new_breakages() -> None:
    before = state(Node("alpha", Version("1.0"), ("gone>=1",)), Node("beta", Version("1.0"), ("alpha<2",)))
    after = state(Node("alpha", Version("2.0"), ("gone>=1",)), Node("beta", Version("1.0"), ("alpha<2",)))
    assert [b.describe() for b in breakages(after, MARKERS)] == [
        "alpha 2.0 requires gone>=1, but it would not be installed",
        "beta 1.0 requires alpha<2, but alpha 2.0 would be installed",
    ]
    assert [b.describe() for b in new_breakages(before, after, MARKERS)] == [
        "beta 1.0 requires alpha<2, but alpha 2.0 would be installed"]


def test_unknown_requirements_are_not_checked() -> None:
    # uv does not report a new install's requirements: None means unknown, not "needs nothing" checked wrongly.
    assert breakages(state(Node("alpha", Version("2.0"), None)), MARKERS) == []
