"""The one requirement evaluator: markers through packaging, the extras fast path agreeing with it, bad lines as values."""

from __future__ import annotations

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name
from packaging.version import Version

from envdoctor._env.probe import marker_environment
from envdoctor._env.satisfy import Ask, extra_only, unmet

ENV = marker_environment()

MARKERS = [
    pytest.param('extra == "gpu"', id="extra-eq"),
    pytest.param("extra=='gpu'", id="extra-eq-tight"),
    pytest.param('"gpu" == extra', id="extra-eq-reversed"),
    pytest.param('extra != "gpu"', id="extra-ne"),
    pytest.param('python_version >= "3" and extra == "test"', id="and-extra"),
    pytest.param('(python_version >= "3") and extra == "test"', id="paren-and-extra"),
    pytest.param('extra == "a" or python_version >= "3"', id="extra-or"),
    pytest.param('(extra == "a" or extra == "b") and python_version >= "3"', id="paren-or"),
    pytest.param('python_version >= "3"', id="no-extra"),
    pytest.param('sys_platform == "linux" and extra != "cpu"', id="and-extra-ne"),
    pytest.param('platform_machine == "extra"', id="quoted-word-extra"),
]


@pytest.mark.parametrize("marker", MARKERS)
def test_extra_fast_path_never_disagrees_with_packaging(marker: str) -> None:
    applies = Marker(marker).evaluate(dict(ENV, extra=""))
    if extra_only(f"pkg; {marker}"):
        assert not applies, "the fast path skipped a requirement that applies"


def test_fast_path_takes_the_common_extras_lines() -> None:
    assert extra_only('pytest>=8; extra == "test"')
    assert extra_only("pytest ; python_version < '3.11' and extra == 'test'")
    assert not extra_only("pytest")


def _installed(**versions: str | None) -> dict:  # type: ignore[type-arg]
    return {canonicalize_name(k): (Version(v) if v else None) for k, v in versions.items()}


def test_a_missing_dependency_behind_extra_not_equal_is_reported() -> None:
    result = unmet([Ask("app", "1.0", 'helper>=2; extra != "gpu"')], _installed(), ENV)
    assert [u.plain for u in result.unmet] == ["helper>=2"]
    assert result.unmet[0].missing


def test_wrong_version_is_reported_with_what_is_installed() -> None:
    result = unmet([Ask("app", "1.0", "tokenizers<0.21,>=0.20")], _installed(tokenizers="0.21.0"), ENV)
    (u,) = result.unmet
    assert u.installed and u.found == Version("0.21.0") and u.plain == "tokenizers<0.21,>=0.20"


def test_met_and_non_applying_requirements_are_not_reported() -> None:
    asks = [Ask("app", "1.0", "ok>=1"), Ask("app", "1.0", 'win; sys_platform == "nonexistent-os"'),
            Ask("app", "1.0", 'dev; extra == "dev"')]
    assert unmet(asks, _installed(ok="1.5"), ENV).unmet == ()


def test_an_unparseable_installed_version_is_not_a_mismatch() -> None:
    assert unmet([Ask("app", "1.0", "odd>=1")], _installed(odd=None), ENV).unmet == ()


@pytest.mark.parametrize("line", [
    pytest.param('thing; python_version ~= "foo"', id="undefined-comparison"),
    pytest.param("thing[", id="invalid-requirement"),
])
def test_lines_that_cannot_be_evaluated_are_values_naming_the_distribution(line: str) -> None:
    result = unmet([Ask("broken-dist", "0.1", line, origin="METADATA")], _installed(), ENV)
    assert result.unmet == ()
    (bad,) = result.bad
    text = bad.describe()
    assert "broken-dist 0.1" in text and line in text and "\n" not in text
