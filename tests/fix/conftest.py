"""Fixtures for the fixer: a wheelhouse of small real wheels with conflicting Requires-Dist, and real venvs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtools import build_wheel, bulky_files, pip, venv_python

from envdoctor._resolver import Sources


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alpha 1/2; beta 1 needs alpha<2, beta 2 needs alpha>=2; gamma needs beta==1; delta (to remove);
    clash 1.0 (resolves, then fails to install); sick 1.0 (installs, import fails); bulky 1/2 (1500 files, for killing pip midway)."""
    wh = tmp_path_factory.mktemp("wheelhouse")
    build_wheel(wh, "alpha", "1.0")
    build_wheel(wh, "alpha", "2.0")
    build_wheel(wh, "beta", "1.0", ["alpha<2"])
    build_wheel(wh, "beta", "2.0", ["alpha>=2"])
    build_wheel(wh, "gamma", "1.0", ["beta==1.0"])
    build_wheel(wh, "delta", "1.0")
    build_wheel(wh, "bulky", "1.0", files=bulky_files("1.0"))
    build_wheel(wh, "bulky", "2.0", files=bulky_files("2.0"))
    # Resolves fine (its metadata is valid) but cannot install where alpha is installed: the file `alpha`
    # would overwrite the package folder `alpha/` (pip: "[Errno 21] Is a directory").
    build_wheel(wh, "clash", "1.0", files={"alpha": "a file where a package folder is\n"})
    build_wheel(wh, "sick", "1.0", files={"sick/__init__.py": "raise ImportError('needs a GPU driver')\n"})
    for version in ("1.0", "2.0"):  # an "extension module": a kernel maps it, as it maps torch/_C*.so
        build_wheel(wh, "native", version, files={"native/__init__.py": f"__version__ = {version!r}\n",
                                                  "native/_core.so": f"not really ELF {version}\n" * 64})
    return wh


@pytest.fixture(autouse=True)
def _no_user_pip_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip and uv read only what a test passes: no pip.conf, no PIP_* index settings."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "UV_INDEX_URL",
                "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_NO_INDEX", "UV_DEFAULT_INDEX", "UV_INDEX"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def offline(wheelhouse: Path) -> Sources:
    """Sources that reach only the wheelhouse."""
    return Sources(no_index=True, find_links=(str(wheelhouse),))


@pytest.fixture(scope="session")
def venv_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real venv with pip, made once; tests get copies (a venv with pip takes seconds to create)."""
    path = tmp_path_factory.mktemp("template") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture
def make_venv(tmp_path: Path, venv_template: Path, wheelhouse: Path) -> Callable[..., str]:
    """Factory: a fresh copy of the template venv with `packages` installed offline; returns its python."""

    def make(*packages: str, name: str = "venv") -> str:
        dest = tmp_path / name
        shutil.copytree(venv_template, dest, symlinks=True)
        # pyvenv.cfg and activate scripts name the template; python -m pip only needs pyvenv.cfg's home.
        python = venv_python(dest)
        if packages:
            pip(python, "install", "--no-index", "--find-links", str(wheelhouse), *packages)
        return python

    return make


@pytest.fixture
def write_matrix(tmp_path: Path) -> Callable[[str], str]:
    """Factory: write a matrix TOML (the body after the header) and return its path as a reference."""

    def write(body: str, name: str = "testfix") -> str:
        path = tmp_path / f"{name}.toml"
        header = f'schema_version = 1\nname = "{name}"\nversion = "1.0"\n'
        path.write_text(header + body, encoding="utf-8")
        return str(path)

    return write
