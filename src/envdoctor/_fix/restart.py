"""Restart detection: which modules this process already imported from packages the fix changed on disk."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class StaleModule:
    """A module loaded before the fix whose file belongs to a changed distribution."""

    module: str
    file: str
    package: str
    loaded_version: str | None
    installed_version: str | None


def _top_levels(files: Iterable[str], sites: Iterable[str]) -> set[str]:
    """Importable top-level names of a distribution, from the files it installed."""
    roots = [os.path.normpath(s) + os.sep for s in sites]
    out: set[str] = set()
    for f in files:
        for root in roots:
            if f.startswith(root):
                first = f[len(root):].split(os.sep, 1)[0]
                if first.endswith((".dist-info", ".egg-info", ".data", ".pth")) or first == "__pycache__":
                    break
                out.add(first.split(".", 1)[0] if first.endswith((".py", ".so", ".pyd")) else first)
                break
    return out


def stale_modules(
    changed: Mapping[str, tuple[str | None, str | None]],
    files_before: Mapping[str, Iterable[str]],
    sites: Iterable[str],
    modules: Mapping[str, ModuleType] | None = None,
) -> list[StaleModule]:
    """Modules in `modules` (default sys.modules) that come from a changed distribution.

    changed: package key -> (version before, version after); files_before: package key -> its files before the
    fix (from the snapshot); sites: the environment's site-packages folders.
    """
    mods = dict(sys.modules if modules is None else modules)
    site_list = [os.path.normpath(s) for s in sites]
    owners: dict[str, str] = {}
    for changed_key in changed:
        for name in _top_levels(files_before.get(changed_key, ()), site_list):
            owners.setdefault(name, changed_key)
    out: list[StaleModule] = []
    for name, mod in sorted(mods.items()):
        top = name.split(".", 1)[0]
        key = owners.get(top)
        file = getattr(mod, "__file__", None)
        if key is None or not file:
            continue
        if not any(os.path.normpath(file).startswith(s + os.sep) for s in site_list):
            continue  # the same name imported from elsewhere (a source checkout) is not affected
        before, after = changed[key]
        version = getattr(mod, "__version__", None) if name == top else None
        out.append(StaleModule(name, file, key, str(version) if version is not None else before, after))
    return out


def _maps(pid: int) -> tuple[set[str], set[tuple[int, int]]]:
    """The paths and (device, inode) pairs of the files process `pid` has mapped, from /proc/<pid>/maps."""
    paths: set[str] = set()
    inodes: set[tuple[int, int]] = set()
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6 or parts[4] == "0":
                continue
            paths.add(parts[5].strip().removesuffix(" (deleted)"))
            with contextlib.suppress(ValueError):
                major, minor = (int(x, 16) for x in parts[3].split(":"))
                inodes.add((os.makedev(major, minor), int(parts[4])))
    return paths, inodes


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def mapped_by(pid: int, files_before: Mapping[str, Iterable[str]],
              copies: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Files of changed distributions that process `pid` has mapped (its loaded extension modules).

    For `!envdoctor fix` run from a notebook: the kernel is another process, so its sys.modules cannot be
    read, but /proc/<pid>/maps lists every shared library it loaded (torch/_C, tokenizers, numpy...). pip
    moves a replaced package into a stash folder ('~okenizers') and deletes it, so the kernel's mapping then
    names the stash, not the file; the snapshot's hard link (`copies`: file -> its copy) keeps the inode, and
    the inode is what is matched. Keys: the changed distributions (packages, not their submodules).
    """
    try:
        mapped, inodes = _maps(pid)
    except OSError:
        return {}
    out: dict[str, list[str]] = {}
    for key, files in files_before.items():
        hit = []
        for f in files:
            if not f.endswith((".so", ".pyd")):
                continue
            copy = (copies or {}).get(f)
            node = _inode(copy) if copy is not None else None
            if f in mapped or (node is not None and node in inodes):
                hit.append(f)
        if hit:
            out[key] = sorted(hit)
    return out
