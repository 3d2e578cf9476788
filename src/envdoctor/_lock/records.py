"""What the installer recorded: a distribution's PEP 610 direct_url.json read as a lock source.

Installs from an index leave no URL behind (only direct URLs are recorded), so those are looked up by
`index.py`; a direct archive without a recorded hash is hashed here when it is a local file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from packaging.version import Version

from .._env.environment import Distribution
from .model import Artifact, Directory, Locked, Unlocked, Vcs


def file_path(url: str) -> str | None:
    """The local path of a file:// URL, else None."""
    parts = urlsplit(url)
    return unquote(parts.path) if parts.scheme == "file" else None


def sha256_of(path: str) -> str:
    """The hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_hashes(archive_info: Mapping[str, object]) -> dict[str, str]:
    """The hashes of a PEP 610 archive_info (also pip's --report download_info), the older `hash` form too."""
    hashes = archive_info.get("hashes")
    if isinstance(hashes, dict) and hashes:
        return {str(k): str(v) for k, v in hashes.items()}
    legacy = archive_info.get("hash")  # PEP 610's older "sha256=<hex>" form
    if isinstance(legacy, str) and "=" in legacy:
        algorithm, _, value = legacy.partition("=")
        return {algorithm: value}
    return {}


def from_record(dist: Distribution, version: Version) -> Locked | Unlocked | None:
    """The lock source the installer recorded for `dist`, Unlocked when it cannot be one, None for an index install."""
    if not dist.direct_url:
        return None
    try:
        info = json.loads(dist.direct_url)
        url = str(info["url"])
    except (ValueError, KeyError, TypeError):
        return Unlocked(dist.name, dist.raw_version, "its direct_url.json cannot be read")
    if "dir_info" in info:
        path = file_path(url) or url
        return Locked(dist.name, version, Directory(path, bool(info["dir_info"].get("editable"))), "installer-record")
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        if not vcs.get("commit_id"):
            return Unlocked(dist.name, dist.raw_version, f"installed from {url} with no commit recorded")
        return Locked(dist.name, version, Vcs(str(vcs.get("vcs", "git")), url, str(vcs["commit_id"]),
                                              vcs.get("requested_revision")), "installer-record")
    hashes = archive_hashes(info.get("archive_info") or {})
    if hashes:
        return Locked(dist.name, version, Artifact(url, hashes), "installer-record")
    local = file_path(url)
    if local and os.path.isfile(local):
        return Locked(dist.name, version, Artifact(url, {"sha256": sha256_of(local)}, os.path.getsize(local)),
                      "local-file")
    return Unlocked(dist.name, dist.raw_version, f"installed from {url} with no hash recorded, and it is not a local file")
