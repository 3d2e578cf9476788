"""Fixtures for the fixer: a wheelhouse of small real wheels with conflicting Requires-Dist, and real venvs."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from envdoctor._resolver import Sources


def build_wheel(folder: Path, name: str, version: str, requires: Iterable[str] = (),
                files: dict[str, str] | None = None) -> Path:
    """Write a real, installable wheel: the package module, METADATA, WHEEL and a RECORD with hashes."""
    mod = name.replace("-", "_")
    dist_info = f"{mod}-{version}.dist-info"
    contents = dict(files or {f"{mod}/__init__.py": f"__version__ = {version!r}\n"})
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    contents[f"{dist_info}/METADATA"] = "\n".join(meta) + "\n\n"
    contents[f"{dist_info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: envdoctor-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    out = folder / f"{mod}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as z:
        for path, text in contents.items():
            z.writestr(path, text)
    return out


def _bulky(version: str, n: int = 1500) -> dict[str, str]:
    body = "# padding\n" * 200
    files = {"bulky/__init__.py": f"__version__ = {version!r}\n"}
    prefix = "old" if version == "1.0" else "new"
    files.update({f"bulky/{prefix}_{i:04d}.py": body for i in range(n)})
    return files


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alpha 1/2; beta 1 needs alpha<2, beta 2 needs alpha>=2; gamma needs beta==1; delta (to remove);
    clash 1.0 (resolves, then fails to install); bulky 1/2 (1500 files, for killing pip midway)."""
    wh = tmp_path_factory.mktemp("wheelhouse")
    build_wheel(wh, "alpha", "1.0")
    build_wheel(wh, "alpha", "2.0")
    build_wheel(wh, "beta", "1.0", ["alpha<2"])
    build_wheel(wh, "beta", "2.0", ["alpha>=2"])
    build_wheel(wh, "gamma", "1.0", ["beta==1.0"])
    build_wheel(wh, "delta", "1.0")
    build_wheel(wh, "bulky", "1.0", files=_bulky("1.0"))
    build_wheel(wh, "bulky", "2.0", files=_bulky("2.0"))
    # Resolves fine (its metadata is valid) but cannot install where alpha is installed: the file `alpha`
    # would overwrite the package folder `alpha/` (pip: "[Errno 21] Is a directory").
    build_wheel(wh, "clash", "1.0", files={"alpha": "a file where a package folder is\n"})
    for version in ("1.0", "2.0"):  # an "extension module": a kernel maps it, as it maps torch/_C*.so
        build_wheel(wh, "native", version, files={"native/__init__.py": f"__version__ = {version!r}\n",
                                                  "native/_core.so": f"not really ELF {version}\n" * 64})
    return wh


def simple_index(wheelhouse: Path, dest: Path, names: Iterable[str] | None = None) -> Path:
    """A PEP 503 'simple' index folder over (some of) the wheelhouse's wheels, usable as --index-url."""
    by_name: dict[str, list[Path]] = {}
    for whl in sorted(wheelhouse.glob("*.whl")):
        by_name.setdefault(whl.name.split("-")[0].replace("_", "-").lower(), []).append(whl)
    for name, wheels in by_name.items():
        if names is not None and name not in names:
            continue
        folder = dest / name
        folder.mkdir(parents=True, exist_ok=True)
        for whl in wheels:
            shutil.copy2(whl, folder / whl.name)
        links = "".join(f'<a href="{w.name}">{w.name}</a>\n' for w in wheels)
        (folder / "index.html").write_text(f"<html><body>\n{links}</body></html>\n", encoding="utf-8")
    return dest


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


def venv_python(path: Path) -> str:
    return str(path / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


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


def pip(python: str, *args: str) -> str:
    """Run the venv's real pip and return its stdout (raises with pip's output on failure)."""
    proc = subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if proc.returncode != 0:
        raise AssertionError(f"pip {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def freeze(python: str) -> str:
    """`pip freeze --all` of a venv, sorted: the before/after equality of every fault test."""
    return "\n".join(sorted(pip(python, "freeze", "--all").splitlines(), key=str.lower))


@pytest.fixture
def write_matrix(tmp_path: Path) -> Callable[[str], str]:
    """Factory: write a matrix TOML (the body after the header) and return its path as a reference."""

    def write(body: str, name: str = "testfix") -> str:
        path = tmp_path / f"{name}.toml"
        header = f'schema_version = 1\nname = "{name}"\nversion = "1.0"\n'
        path.write_text(header + body, encoding="utf-8")
        return str(path)

    return write
