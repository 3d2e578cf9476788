"""Snapshot an environment before a fix: every installed version, and a copy of each distribution the fix changes.

The copy is made of hard links to the installed files (listed in each RECORD), so it costs no disk and no
time even for torch; pip never rewrites a file in place (it unlinks and writes anew), so the linked bytes
stay the old ones. Where hard links are impossible, files are copied.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from .._env.environment import Distribution, Environment
from .._paths import private_write
from .._resolver._pip import pip_command, pip_env
from ..errors import FixError


@dataclass(frozen=True)
class Saved:
    """A distribution kept to be put back: its files (absolute paths) mirrored under `root`."""

    name: str
    version: str
    files: tuple[str, ...]
    root: str
    wheel_dir: str | None = None  # fallback when there was no RECORD: a downloaded wheel


@dataclass(frozen=True)
class Snapshot:
    """The environment before the first step."""

    python: str
    prefix: str
    folder: str
    versions: dict[str, str]
    freeze: str
    saved: dict[str, Saved] = field(default_factory=dict)
    site_entries: tuple[str, ...] = ()
    site_dirs: tuple[str, ...] = ()

    def to_json(self) -> str:
        data = {k: getattr(self, k) for k in ("python", "prefix", "folder", "versions", "freeze", "site_entries",
                                              "site_dirs")}
        data["saved"] = {k: vars(v) | {"files": list(v.files)} for k, v in self.saved.items()}
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        saved = {k: Saved(**(v | {"files": tuple(v["files"])})) for k, v in data.pop("saved").items()}
        data["site_entries"] = tuple(data["site_entries"])
        data["site_dirs"] = tuple(data["site_dirs"])
        return cls(saved=saved, **data)


def pip_freeze(python: str, timeout: float = 120.0) -> str:
    """`<python> -m pip freeze --all`: the installed set exactly as pip reports it (pip's warnings dropped)."""
    try:
        proc = subprocess.run([*pip_command(python), "freeze", "--all"], capture_output=True, text=True,
                              timeout=timeout, env=pip_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FixError(f"cannot list the installed packages of {python}: {e}") from e
    if proc.returncode != 0:
        raise FixError(f"cannot list the installed packages of {python}: {proc.stderr.strip()[-300:]}")
    return "\n".join(sorted(proc.stdout.splitlines(), key=str.lower))


def record_files(dist_path: str, location: str) -> list[str] | None:
    """Absolute paths of the files a distribution installed, from its RECORD; None when it has none."""
    record = Path(dist_path) / "RECORD"
    try:
        text = record.read_text(encoding="utf-8")
    except OSError:
        return None
    files: list[str] = []
    for row in csv.reader(text.splitlines()):
        if not row or not row[0]:
            continue
        path = os.path.normpath(os.path.join(location, row[0]))
        if os.path.lexists(path):
            files.append(path)
    return files


def _link_or_copy(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.lexists(dst):
        os.unlink(dst)
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _mirror(path: str, root: str) -> str:
    return os.path.join(root, os.path.splitdrive(path)[1].lstrip("\\/"))


def new_snapshot_folder(work: Path) -> Path:
    """Where the next snapshot of this environment goes (named before it is taken, so the journal can name it)."""
    return work / f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def take_snapshot(env: Environment, keep: Iterable[str], folder: Path, *, freeze: bool = True,
                  root: Path | None = None, added: Iterable[str] = ()) -> Snapshot:
    """Record every installed version and keep a copy of the distributions in `keep` (the ones the fix changes).

    The same pre-fix state is also written as a PEP 751 `pylock.toml` (`pylock.py`; `added`: what the fix
    installs anew, to be removed by hand). `snapshot.json` is written last: one that exists is complete.
    """
    root = root or new_snapshot_folder(folder)
    root.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Saved] = {}
    packable: dict[str, tuple[Distribution, list[str]]] = {}
    mirror: dict[str, str] = {}
    for name in keep:
        dist = env.get(name)
        if dist is None:
            continue
        files = record_files(dist.path, dist.location) if dist.path.endswith(".dist-info") else None
        key = str(canonicalize_name(name))
        droot = str(root / key)
        if files is None:
            saved[key] = Saved(dist.name, dist.raw_version, (), droot, _download(env.executable, dist.name,
                                                                                   dist.raw_version, droot))
            continue
        for f in files:
            _link_or_copy(f, _mirror(f, droot))
            mirror[f] = _mirror(f, droot)
        saved[key] = Saved(dist.name, dist.raw_version, tuple(files), droot)
        packable[key] = (dist, files)
    sites = tuple(sorted({d.location for d in env.distributions.values() if d.location}))
    entries = tuple(sorted(os.path.join(s, e) for s in sites if os.path.isdir(s) for e in os.listdir(s)))
    snap = Snapshot(
        python=env.executable, prefix=env.prefix, folder=str(root),
        versions={str(k): d.raw_version for k, d in env.distributions.items()},
        freeze=pip_freeze(env.executable) if freeze else "", saved=saved, site_entries=entries, site_dirs=sites,
    )
    from .pylock import write_pylock

    write_pylock(root, env.executable, packable, mirror, added)
    # Last, and atomically: a snapshot.json that exists is complete (the journal relies on it).
    private_write(root / "snapshot.json", snap.to_json())
    return snap


def _download(python: str, name: str, version: str, folder: str) -> str:
    """No RECORD to copy from (an egg-info or distutils install): keep the wheel of that exact version."""
    wheels = os.path.join(folder, "wheel")
    cmd = [*pip_command(python), "download", "--no-deps", "--only-binary=:all:", "-d", wheels, f"{name}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=pip_env())
    if proc.returncode != 0:
        raise FixError(f"cannot keep a copy of {name} {version} to restore it (it has no RECORD and pip "
                       f"download failed); nothing was changed")
    return wheels


def changed_since(snapshot: Snapshot, now: Environment) -> dict[NormalizedName, tuple[str | None, str | None]]:
    """Names whose version differs between the snapshot and `now`: (before, after), None = absent."""
    out: dict[NormalizedName, tuple[str | None, str | None]] = {}
    now_versions = {str(k): d.raw_version for k, d in now.distributions.items()}
    for key in set(snapshot.versions) | set(now_versions):
        before, after = snapshot.versions.get(key), now_versions.get(key)
        if before != after:
            out[canonicalize_name(key)] = (before, after)
    return out


def discard_copies(snapshot: Snapshot, keep_last: int = 5) -> None:
    """Drop the kept files once they are not needed (the fix finished or was rolled back); keep the logs.

    Only the newest `keep_last` snapshot folders of the environment are kept at all.
    """
    for saved in snapshot.saved.values():
        shutil.rmtree(saved.root, ignore_errors=True)
    parent = Path(snapshot.folder).parent
    folders = sorted(parent.glob("snapshot-*"), key=lambda p: p.stat().st_mtime)
    for old in folders[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    for old in folders[-keep_last:-1]:  # the newest snapshot's pylock wheels undo the last fix by hand
        shutil.rmtree(old / "wheels", ignore_errors=True)
