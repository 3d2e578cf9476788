"""Fixtures for the lock: a wheelhouse of small real wheels and pip/uv reading only what a test passes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtools import build_wheel  # the fixer's wheel builder (tests/fix, on pytest's pythonpath)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alpha 1.0/2.0, beta 1.0 (needs alpha<2), gamma 1.0 (installed by path, so its URL is recorded)."""
    wh = tmp_path_factory.mktemp("lock-wheelhouse")
    build_wheel(wh, "alpha", "1.0")
    build_wheel(wh, "alpha", "2.0")
    build_wheel(wh, "beta", "1.0", ["alpha<2"])
    build_wheel(wh, "gamma", "1.0")
    return wh


@pytest.fixture
def only_wheelhouse(wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip finds packages only in the wheelhouse (no pip.conf, no index); uv reads no index settings."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL",
                "UV_FIND_LINKS", "UV_DEFAULT_INDEX", "UV_INDEX"):
        monkeypatch.delenv(var, raising=False)
    return wheelhouse
