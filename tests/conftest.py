"""Shared fixtures: an isolated cache/home per test, and factories for real dist-info folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from envdoctor.testing import make_dist


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own envdoctor cache (matrices, certificates, state), never the user's."""
    cache = tmp_path_factory.mktemp("envdoctor-cache")
    monkeypatch.setenv("ENVDOCTOR_CACHE_DIR", str(cache))
    monkeypatch.delenv("ENVDOCTOR_MATRIX_PATH", raising=False)
    monkeypatch.delenv("ENVDOCTOR_SKIP_GUARD", raising=False)
    return cache


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """An empty site-packages folder to fill with make_dist."""
    path = tmp_path / "site-packages"
    path.mkdir()
    return path


@pytest.fixture
def dist(site: Path):  # type: ignore[no-untyped-def]
    """Factory: dist("transformers", "4.46.3", ["tokenizers<0.21,>=0.20"]) writes a real dist-info."""

    def make(name: str, version: str, requires: list[str] | tuple[str, ...] = (), **kw: object) -> Path:
        return make_dist(site, name, version, requires, **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
def write_matrix(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Factory: write_matrix("body") writes a user matrix file with the header filled in, returns its path."""

    def make(body: str, name: str = "test", version: str = "1.0", filename: str | None = None) -> Path:
        path = tmp_path / (filename or f"{name}-{version}.toml")
        path.write_text(f'schema_version = 1\nname = "{name}"\nversion = "{version}"\n{body}', encoding="utf-8")
        return path

    return make
