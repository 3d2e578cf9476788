"""Helpers for tests of envdoctor and of projects that build on it: real *.dist-info folders, fake GPUs."""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from ._env import probe as _envprobe
from ._env.environment import Environment, from_facts
from ._env.gpu import GpuInfo, gpu_targets


def make_dist(site: Path, name: str, version: str, requires: Iterable[str] = (),
              requires_python: str | None = None, metadata: str | None = None,
              files: Mapping[str, str] | None = None) -> Path:
    """Write a real `name-version.dist-info` folder (METADATA, INSTALLER) into `site` and return it.

    `files` (relative path -> text) are written into `site` too, with a RECORD that holds their sha256 hashes
    as pip writes them (so `certify --verify-files` has something to check).
    """
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    if metadata is None:
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        if requires_python:
            lines.append(f"Requires-Python: {requires_python}")
        lines += [f"Requires-Dist: {r}" for r in requires]
        metadata = "\n".join(lines) + "\n\nLong description that the reader must not need.\n"
    (folder / "METADATA").write_text(metadata, encoding="utf-8")
    (folder / "INSTALLER").write_text("pip\n", encoding="utf-8")
    if files is not None:
        rows = []
        for rel, text in files.items():
            target = site / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = text.encode("utf-8")
            target.write_bytes(data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{rel},sha256={digest},{len(data)}")
        rows.append(f"{folder.name}/RECORD,,")
        (folder / "RECORD").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def fake_gpu(target: str = "a100-80gb", **changes: object) -> GpuInfo:
    """A GPU that is not on this machine (CI has none): one of the --gpu targets, with fields changed."""
    info = replace(gpu_targets()[target], source="fake", count=1, driver_version="550.54.15",
                   cuda_driver_version="12.4", uuid="GPU-00000000-fake")
    return replace(info, **changes)  # type: ignore[arg-type]


def fake_environment(*sites: Path, gpu: GpuInfo | None = None, python_version: str | None = None,
                     **markers: str) -> Environment:
    """An Environment read (for real) from the given site folders, with this interpreter's markers."""
    facts = _envprobe.distributions([str(s) for s in sites])
    m = _envprobe.marker_environment()
    if python_version:
        m["python_full_version"] = python_version
        m["python_version"] = ".".join(python_version.split(".")[:2])
    m.update(markers)
    facts.update(executable=sys.executable, prefix=str(sites[0]) if sites else "", markers=m,
                 runtime={}, sys_path=[str(s) for s in sites])
    return from_facts(facts, gpu if gpu is not None else GpuInfo(False, reason="fake: no GPU"))
