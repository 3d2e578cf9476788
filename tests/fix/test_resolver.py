"""The resolver interface on the real pip and uv, offline against the test wheelhouse."""

from __future__ import annotations

import pytest

from envdoctor._fix.plan import refusal
from envdoctor._resolver import ConflictKind, Requested, Sources, resolve
from envdoctor.errors import UsageError

BACKENDS = [pytest.param("pip", id="pip"), pytest.param("uv", id="uv")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_conflict_names_both_sides_and_the_lines(backend: str, offline: Sources, make_venv) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    res = resolve([Requested("gamma==1.0", "req.txt:1"), Requested("beta==2.0", "req.txt:2")],
                  python=python, backend=backend, sources=offline)
    assert not res.ok and res.backend == backend
    conflict = res.conflict
    assert conflict.kind is ConflictKind.UNSATISFIABLE and "gamma" in conflict.summary
    assert {(s.name, s.specifier, s.dependent) for s in conflict.sides} >= {("beta", "==1.0", "gamma"),
                                                                            ("beta", "==2.0", None)}
    assert {r.origin for r in conflict.requested} == {"req.txt:1", "req.txt:2"}
    text = refusal(conflict)  # the plan words the lines with their origins; the resolver adds nothing
    assert "gamma==1.0  (req.txt:1)" in text and "beta==2.0  (req.txt:2)" in text
    assert res.conflict.chain  # the resolver's own derivation, line by line


@pytest.mark.parametrize("backend", BACKENDS)
def test_against_installed_reports_only_changes(backend: str, offline: Sources, make_venv) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0", "beta==1.0")
    res = resolve(["beta==2.0"], python=python, backend=backend, sources=offline)
    assert res.ok, res.raw
    assert {(i.name, str(i.version)) for i in res.installs} == {("alpha", "2.0"), ("beta", "2.0")}
    assert res.get("beta").requested and not res.get("alpha").requested
    same = resolve(["beta==1.0"], python=python, backend=backend, sources=offline)
    assert same.ok and same.installs == ()


@pytest.mark.parametrize("backend", BACKENDS)
def test_declared_python_and_platform_from_scratch(backend: str, offline: Sources) -> None:
    res = resolve(["gamma"], python_version="3.12", platform="linux", backend=backend, sources=offline)
    assert res.ok, res.raw
    assert {i.name: str(i.version) for i in res.installs} == {"gamma": "1.0", "beta": "1.0", "alpha": "1.0"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_unreachable_index_is_a_refusal_not_a_crash(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_RETRIES", "0")  # fail fast: the port is closed, retrying cannot help
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    res = resolve(["alpha==1.0"], backend=backend, against_installed=False,
                  sources=Sources(index_url="http://127.0.0.1:9/simple"), timeout=120)
    assert not res.ok
    assert "alpha" in res.conflict.summary


def test_bad_requirement_and_backend_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="invalid requirement 'alpha >>= 1' \\(m.toml\\)"):
        resolve([Requested("alpha >>= 1", "m.toml")])
    with pytest.raises(UsageError, match="--backend conda"):
        resolve(["alpha"], backend="conda")
