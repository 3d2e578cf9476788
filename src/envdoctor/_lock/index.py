"""The rest from the configured index: `pip install --dry-run --ignore-installed --no-deps --report` of the exact
pins, run for the locked interpreter (so its tags pick the wheels), whose download_info carries URL and hashes."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .._resolver._common import run_tool
from .._resolver._pip import pip_command, pip_env, source_args
from .._resolver.model import Sources
from .._status import resolving, run_with_status
from ..errors import ResolutionError
from .model import Artifact, Locked, Unlocked
from .records import archive_hashes, file_path, sha256_of

# pip's words for a pin the index does not have (pip 22.2 .. 26)
_MISSING = re.compile(r"(?:No matching distribution found for|Could not find a version that satisfies the requirement)"
                      r" (?P<name>[A-Za-z0-9._-]+)")


def _artifact(item: Mapping[str, Any]) -> Artifact | None:
    info = item.get("download_info")
    if not isinstance(info, dict) or "archive_info" not in info:
        return None
    hashes = archive_hashes(info["archive_info"] or {})
    local = file_path(str(info["url"]))
    is_file = bool(local) and os.path.isfile(str(local))
    if not hashes and is_file:  # a find-links folder or a simple index without #sha256= fragments
        hashes = {"sha256": sha256_of(str(local))}
    if not hashes:
        return None
    return Artifact(str(info["url"]), dict(hashes), os.path.getsize(str(local)) if is_file else None)


def _report(python: str | None, pins: Sequence[str], sources: Sources, timeout: float,
            where: tuple[str | None, str | None]) -> tuple[dict[str, Any], str]:
    with tempfile.TemporaryDirectory(prefix="envdoctor-lock-") as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [*pip_command(python), "install", "--dry-run", "--ignore-installed", "--no-deps", "--report", report,
               "--progress-bar", "off", "--no-input", *source_args(sources), *pins]
        job = resolving("pip", pins, *where)
        proc, _ = run_with_status(job, lambda: run_tool("pip", cmd, timeout=timeout, env=pip_env()),
                                  ok=lambda done: done[0].returncode == 0)
        raw = proc.stdout + proc.stderr
        if proc.returncode != 0 or not os.path.exists(report):
            return {}, raw
        with open(report, encoding="utf-8") as f:
            return json.load(f), raw


def from_index(python: str | None, pins: Mapping[NormalizedName, tuple[str, Version]], sources: Sources,
               timeout: float = 900.0, where: tuple[str | None, str | None] = (None, None)
               ) -> tuple[list[Locked], list[Unlocked]]:
    """Lock each pinned name to the file the index serves for this interpreter; a pin it lacks is Unlocked.
    `where` (Python version, platform) only words the live status."""
    wanted = dict(pins)
    unlocked: list[Unlocked] = []
    data: dict[str, Any] = {}
    while wanted:
        data, raw = _report(python, [f"{name}=={version}" for name, version in wanted.values()], sources, timeout,
                            where)
        if data:
            break
        missing = {canonicalize_name(m["name"]) for m in _MISSING.finditer(raw)} & set(wanted)
        if not missing:
            raise ResolutionError(f"pip could not look up the installed versions on the index: {raw.strip()[-600:]}")
        for key in sorted(missing):  # pip names the first pin it cannot find; drop it and ask again
            name, version = wanted.pop(key)
            unlocked.append(Unlocked(name, str(version), "this version is not on the configured index"))
    locked: list[Locked] = []
    for item in data.get("install", []) if wanted else []:
        meta = item.get("metadata", {})
        key = canonicalize_name(str(meta.get("name", "")))
        if key not in wanted:
            continue
        name, pinned = wanted.pop(key)
        artifact = _artifact(item)
        try:
            version = Version(str(meta.get("version")))
        except InvalidVersion:
            version = pinned
        if artifact is None:
            unlocked.append(Unlocked(name, str(pinned), "the index gave no hash for its file"))
        else:
            locked.append(Locked(name, version, artifact, "index"))
    unlocked += [Unlocked(name, str(v), "pip's report did not list it") for name, v in wanted.values()]
    return locked, unlocked
