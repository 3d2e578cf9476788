"""The snapshot as a standard lock file: PEP 751 `pylock.toml` for the distributions a fix changes.

PEP 751 wants every wheel with its hashes, and an installed distribution does not remember the wheel it
came from; so each distribution the fix will replace is packed back into a wheel from its own files
(the RECORD's, read through the snapshot's hard links), uncompressed, next to the lock file. The lock
then restores the pre-fix versions by hand, offline: uv 0.6.15 or newer (`uv pip install --offline
--no-deps -r pylock.toml`, tested with uv 0.13.9; `uv pip sync` would also remove everything the lock does
not list, which is everything the fix does not touch), or pip 26.1 or newer (`pip install --no-deps -r
pylock.toml`, experimental: https://github.com/pypa/pip/issues/13876); pip 23.2 to 26.0 cannot read it.
The distributions the fix adds are listed under `[tool.envdoctor] remove`.
Packing is skipped past `MAX_BYTES` (a CUDA torch): those are listed under `unarchived`, and envdoctor's
own rollback restores them from the hard links all the same.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._env.environment import Distribution
from .._lock.records import sha256_of
from .._paths import private_write
from .._render.lock import render_snapshot

MAX_BYTES = 512 * 2**20
_SKIP = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


@dataclass(frozen=True)
class Packed:
    """One distribution packed back into a wheel: its file (relative to the lock file) and sha256."""

    name: str
    version: str
    wheel: str
    sha256: str


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _tag(dist_path: str) -> str:
    try:
        text = (Path(dist_path) / "WHEEL").read_text(encoding="utf-8")
    except OSError:
        return "py3-none-any"
    tags = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Tag:")]
    return tags[0] if tags else "py3-none-any"


def wheel_name(name: str, version: str, tag: str) -> str:
    """The wheel file name of a distribution (the binary distribution format's escaping of the name)."""
    return f"{re.sub(r'[-_.]+', '_', name)}-{version.replace('-', '_')}-{tag}.whl"


def pack(dist: Distribution, files: Iterable[str], read_from: Mapping[str, str], out: Path) -> Packed:
    """Pack an installed distribution's files under its site folder back into a wheel in `out`.

    read_from: each file's copy to read (the snapshot's hard link); scripts outside the site folder are left
    out (an installer writes them anew from entry_points.txt), and so are byte-code caches.
    """
    site = os.path.normpath(dist.location) + os.sep
    info = os.path.basename(dist.path)
    name = wheel_name(dist.name, dist.raw_version, _tag(dist.path))
    out.mkdir(parents=True, exist_ok=True)
    record: list[str] = []
    with zipfile.ZipFile(out / name, "w", compression=zipfile.ZIP_STORED) as z:
        for f in files:
            if not f.startswith(site) or "__pycache__" in f or f.endswith(".pyc"):
                continue
            arc = f[len(site):].replace(os.sep, "/")
            if arc.startswith(info + "/") and arc.split("/", 1)[1] in _SKIP:
                continue
            src = read_from.get(f, f)
            if os.path.islink(src) or not os.path.isfile(src):
                continue
            data = Path(src).read_bytes()
            z.writestr(arc, data)
            record.append(f"{arc},{_digest(data)},{len(data)}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return Packed(dist.name, dist.raw_version, f"{out.name}/{name}", sha256_of(str(out / name)))


def write_pylock(folder: Path, python: str, dists: Mapping[str, tuple[Distribution, list[str]]],
                 mirror: Mapping[str, str], remove: Iterable[str], max_bytes: int = MAX_BYTES) -> Path:
    """Pack `dists` (key -> distribution and its files) and write `folder/pylock.toml`; returns its path."""
    packed: list[Packed] = []
    unarchived: list[str] = []
    budget = max_bytes
    for _, (dist, files) in sorted(dists.items()):
        size = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
        if size > budget:
            unarchived.append(f"{dist.name}=={dist.raw_version}")
            continue
        budget -= size
        packed.append(pack(dist, files, mirror, folder / "wheels"))
    path = folder / "pylock.toml"
    private_write(path, render_snapshot(packed, remove, unarchived, python))
    return path


NOTE = ("restore it by hand with uv >= 0.6.15 (uv pip install --offline --no-deps -r PYLOCK) or pip >= 26.1 "
        "(pip install --no-deps -r PYLOCK, experimental), then uninstall what [tool.envdoctor] remove lists; "
        "envdoctor fix --rollback does both")

