"""In-place edits of installed packages: each file of a distribution against the hash its RECORD holds.

Seconds, not milliseconds (it reads every file of torch), so only on request: `certify --verify-files`,
`certify --status --verify-files`, `guard(deep=True)`. The fingerprint alone notices installs, removals and
reinstalls, not a hand edit of `site-packages/transformers/trainer.py`.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any


def _digest(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode("ascii")


def changed_in(metadata_dir: str) -> tuple[list[str], bool]:
    """Files of one distribution whose bytes differ from its RECORD (or are gone), and whether it has a RECORD."""
    record = os.path.join(metadata_dir, "RECORD")
    root = os.path.dirname(metadata_dir)
    try:
        with open(record, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except OSError:
        return [], False
    changed = []
    for row in rows:
        if len(row) < 2 or not row[1]:
            continue  # RECORD itself, .pyc files and the like carry no hash
        algorithm, _, expected = row[1].partition("=")
        if algorithm not in hashlib.algorithms_guaranteed or algorithm in ("md5", "sha1"):
            continue
        path = os.path.normpath(os.path.join(root, row[0]))
        try:
            if _digest(path, algorithm) != expected:
                changed.append(row[0])
        except FileNotFoundError:
            changed.append(f"{row[0]} (missing)")
        except OSError as e:
            changed.append(f"{row[0]} (unreadable: {e.strerror or e})")
    return changed, True


def verify_distributions(metadata_dirs: Iterable[str]) -> dict[str, list[str]]:
    """Distribution folder name -> its changed files, for those with any."""
    out = {}
    for d in metadata_dirs:
        changed, _ = changed_in(d)
        if changed:
            out[os.path.basename(d)] = changed
    return out


def describe(changed: Mapping[str, list[str]]) -> str:
    """One line: which distributions' files changed since install, and what to do."""
    parts = [f"{name}: {', '.join(files[:3])}{f' and {len(files) - 3} more' if len(files) > 3 else ''}"
             for name, files in sorted(changed.items())]
    return ("files changed since install (an in-place edit): " + "; ".join(parts)
            + " - reinstall them (pip install --force-reinstall --no-deps NAME==VERSION) and certify again")


def changed_files(cert: Any) -> str:
    """'' when the certified distributions' files match their RECORDs, else why the certificate no longer holds."""
    dirs = (cert.data.get("environment") or {}).get("checked") or ()
    changed = verify_distributions(str(d) for d in dirs)
    return describe(changed) if changed else ""
