"""Helpers for the fixer's tests: build real wheels, a PEP 503 index over them, run a venv's real pip."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path


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


def bulky_files(version: str, n: int = 1500) -> dict[str, str]:
    body = "# padding\n" * 200
    files = {"bulky/__init__.py": f"__version__ = {version!r}\n"}
    prefix = "old" if version == "1.0" else "new"
    files.update({f"bulky/{prefix}_{i:04d}.py": body for i in range(n)})
    return files


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


def venv_python(path: Path) -> str:
    return str(path / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


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
