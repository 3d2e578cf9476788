"""The import names an installed distribution provides (top_level.txt, else its RECORD), read from its metadata."""

from __future__ import annotations

import os

_SKIP = {"..", "__pycache__", "bin", "include", "share", "lib", "scripts"}


def name_guess(dist_name: str) -> str:
    """The import name a distribution most likely has: 'galore-torch' -> 'galore_torch' (used when not installed)."""
    return dist_name.strip().lower().replace("-", "_").replace(".", "_")


def _from_record(text: str) -> set[str]:
    names: set[str] = set()
    for line in text.splitlines():
        path = line.rsplit(",", 2)[0].strip().strip('"')
        first, sep, _ = path.partition("/")
        if not first or first in _SKIP or first.endswith((".dist-info", ".data", ".egg-info", ".pth")):
            continue
        if first.startswith("__editable__"):
            continue
        stem = first if sep else first.split(".", 1)[0]  # a file: 'six.py', '_cffi.cpython-312-x86_64-linux-gnu.so'
        if not sep and not first.endswith((".py", ".so", ".pyd", ".pyc")):
            continue
        if stem.isidentifier():
            names.add(stem)
    return names


def import_names(metadata_dir: str) -> set[str]:
    """Top-level import names of the distribution whose metadata folder this is; empty when it says nothing."""
    for name, parse in (("top_level.txt", None), ("RECORD", _from_record)):
        try:
            with open(os.path.join(metadata_dir, name), encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 22)
        except OSError:
            continue
        if parse is None:
            found = {n.strip().replace("/", ".").split(".")[0] for n in text.splitlines()}
            found = {n for n in found if n.isidentifier()}
        else:
            found = parse(text)
        if found:
            return found
    return set()
