"""A cheap fingerprint of an environment: every installed distribution plus a token that changes when it is reinstalled.

Stdlib only and no importlib.metadata, because the guard computes it on every start of a training script
and must stay within a few milliseconds. It reads the folders `_fastpath.metadata_dirs` lists (the one scan
of sys.path, which `envdoctor check` reads the metadata of) and one stat() per distribution: RECORD (written by pip and uv at install time), else METADATA/PKG-INFO.
Installing, removing, upgrading or reinstalling any distribution changes it; editing a package's files in
place does not (that would need hashing every file, seconds instead of milliseconds).
"""

from __future__ import annotations

import os
import sys

from .._fastpath import METADATA_SUFFIXES, metadata_dirs
from ._record import sha256

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: this runs in the guard
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable
    from typing import Any

FINGERPRINT_VERSION = 1


def python_id(implementation: str | None = None, full_version: str | None = None) -> str:
    """The interpreter as the fingerprint sees it, e.g. 'cpython-3.12.3' (marker names, so another env can match)."""
    impl = implementation if implementation is not None else sys.implementation.name
    ver = full_version if full_version is not None else sys.version.split()[0]  # = platform.python_version()
    return f"{impl}-{ver}"


def _token(folder: str) -> str:
    """mtime and size of the file that a (re)install rewrites; '-' when none can be read."""
    for name in ("RECORD", "METADATA", "PKG-INFO"):
        try:
            st = os.stat(os.path.join(folder, name))
        except OSError:
            continue
        return f"{name[0]}{st.st_mtime_ns:x}.{st.st_size:x}"
    try:
        st = os.stat(folder)  # an egg-info file, or a folder without metadata
    except OSError:
        return "-"
    return f"d{st.st_mtime_ns:x}.{st.st_size:x}"


def entries(paths: Iterable[str]) -> list[tuple[str, str, str]]:
    """(path entry, metadata folder name, token) for every distribution on the path entries, in path order."""
    return [(entry or ".", name, _token(os.path.join(entry or ".", name))) for entry, name, _ in metadata_dirs(paths)]


def fingerprint(paths: Iterable[str] | None = None, prefix: str | None = None, python: str | None = None) -> str:
    """The fingerprint of an environment (this interpreter's sys.path by default), as 'v1:<sha256 hex>'."""
    h = sha256()
    h.update(f"{FINGERPRINT_VERSION}\0{prefix if prefix is not None else sys.prefix}\0".encode())
    h.update(f"{python if python is not None else python_id()}\0".encode())
    for root, name, token in entries(sys.path if paths is None else paths):
        h.update(f"{root}\0{name}\0{token}\n".encode("utf-8", "surrogateescape"))
    return f"v{FINGERPRINT_VERSION}:{h.hexdigest()}"


def distribution_tokens(paths: Iterable[str] | None = None) -> dict[str, str]:
    """Metadata folder path -> token, for the certificate's list of distributions."""
    return {os.path.join(root, name): token for root, name, token in entries(sys.path if paths is None else paths)}


def dir_token(entry: str) -> str:
    """A path entry's folder token: mtime, inode, link count and size ('-' when it cannot be read)."""
    try:
        st = os.stat(entry or ".")
    except OSError:
        return "-"
    # nlink and size too: mtime can be as coarse as a kernel tick, while adding a folder changes nlink
    # (ext4, xfs, tmpfs) or the folder's size (btrfs) at once
    return f"{st.st_mtime_ns:x}.{st.st_ino:x}.{st.st_nlink:x}.{st.st_size:x}"


def _has_dists(entry: str) -> bool:
    try:
        with os.scandir(entry or ".") as it:
            return any(e.name.endswith(METADATA_SUFFIXES) for e in it)
    except OSError:
        return False


def dir_tokens(paths: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """Path entry -> [mtime/inode token, holds distributions?], recorded in the certificate for `same_dirs`."""
    return {e: [dir_token(e), _has_dists(e)] for e in dict.fromkeys(sys.path if paths is None else paths)}


def same_dirs(recorded: dict[str, list[Any]], paths: Iterable[str]) -> bool:
    """Whether no distribution can have been installed, removed or reinstalled since `recorded` was taken.

    The quick test the guard runs before the full fingerprint: pip and uv add and delete `*.dist-info`
    folders (a reinstall deletes and recreates one), and either changes the mtime of the folder holding it,
    so unchanged folders mean an unchanged package set; a stat per path entry instead of one per
    distribution. False only means "look closer": the caller then compares the full fingerprint, since a
    folder's mtime also moves for harmless reasons (a new __pycache__).
    """
    current = dict.fromkeys(paths)
    for entry in current:
        rec = recorded.get(entry)
        if rec is None:
            if _has_dists(entry):  # a new path entry that holds distributions
                return False
        elif rec[0] != dir_token(entry):
            return False
    return not any(has and entry not in current for entry, (_, has) in recorded.items())
