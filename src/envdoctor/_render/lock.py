"""Render a Lock as PEP 751 pylock.toml, as a hashed requirements file, or as a summary (strings only)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .._lock.model import Artifact, Directory, Lock, Locked, Vcs
from .._lock.records import file_path
from .._version import __version__

if TYPE_CHECKING:
    from .._fix.pylock import Packed


def _toml(value: object) -> str:
    """A TOML value: JSON's string escapes are TOML's basic-string escapes; tables are written inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def environment_marker(markers: Mapping[str, str]) -> str:
    """The PEP 508 marker of the one environment a lock of an installed environment is valid for."""
    keys = ("sys_platform", "platform_machine", "implementation_name", "python_version")
    return " and ".join(f"{k} == '{markers[k]}'" for k in keys if markers.get(k))


def _source(pkg: Locked) -> tuple[str, object]:
    src = pkg.source
    if isinstance(src, Artifact):
        # a local file is a `path` (uv 0.13 refuses file:// URLs in a pylock: "URL scheme is not allowed")
        local = file_path(src.url)
        where = {"path": local} if local else {"url": src.url}
        if pkg.origin == "index" and src.is_wheel:
            return "wheels", [{"name": src.filename, **where, "size": src.size, "hashes": dict(src.hashes)}]
        # a direct URL stays one (PEP 751 `archive`), so the installer records it as pip did: the same pip freeze
        return "archive", {**where, "size": src.size, "hashes": dict(src.hashes)}
    if isinstance(src, Directory):
        return "directory", {"path": src.path, "editable": src.editable}
    assert isinstance(src, Vcs)
    return "vcs", {"type": src.type, "url": src.url, "requested-revision": src.requested_revision,
                   "commit-id": src.commit_id}


def render_pylock(lock: Lock) -> str:
    """PEP 751 pylock.toml (lock-version 1.0) with a [tool.envdoctor] table."""
    minor = ".".join(str(p) for p in lock.python_version.release[:2])
    lines = ['lock-version = "1.0"', f"environments = {_toml([environment_marker(lock.markers)])}",
             f'requires-python = "=={minor}.*"', f'created-by = "envdoctor {__version__}"']
    for pkg in lock.packages:
        kind, value = _source(pkg)
        lines += ["", "[[packages]]", f"name = {_toml(pkg.key)}"]
        if not isinstance(pkg.source, Directory):  # a source tree's version is whatever it builds
            lines.append(f"version = {_toml(str(pkg.version))}")
        lines.append(f"{kind} = {_toml(value)}")
    tool: dict[str, object] = {"python": str(lock.python_version)}
    if lock.matrix:
        tool["matrix"] = lock.matrix
    lines += ["", "[tool.envdoctor]"] + [f"{k} = {_toml(v)}" for k, v in tool.items()]
    if lock.skipped:
        lines.append(f"skipped = {_toml(list(lock.skipped))}")
    if lock.unlocked:
        lines.append(f"unlocked = {_toml([{'name': u.name, 'version': u.version, 'reason': u.reason} for u in lock.unlocked])}")
    if lock.certificate:
        c = lock.certificate
        lines += ["", "[tool.envdoctor.certificate]", f"tier = {c.tier}", f"device = {_toml(c.device)}"]
        lines += [f"gpu = {_toml(c.gpu)}"] if c.gpu else []
        lines.append(f"created = {_toml(c.created)}")
    return "\n".join(lines) + "\n"


def render_snapshot(packed: Iterable[Packed], remove: Iterable[str], unarchived: Iterable[str], python: str) -> str:
    """A fix snapshot's pylock.toml: the packed pre-fix wheels, with what the fix adds under [tool.envdoctor] remove."""
    lines = ['lock-version = "1.0"', 'created-by = "envdoctor"']
    for p in sorted(packed, key=lambda p: p.name.lower()):
        wheel = {"name": p.wheel.rsplit("/", 1)[-1], "path": p.wheel, "hashes": {"sha256": p.sha256}}
        lines += ["", "[[packages]]", f"name = {_toml(p.name)}", f"version = {_toml(p.version)}", f"wheels = {_toml([wheel])}"]
    lines += ["", "[tool.envdoctor]", f"python = {_toml(python)}", f"remove = {_toml(sorted(remove))}",
              f"unarchived = {_toml(sorted(unarchived))}"]
    return "\n".join(lines) + "\n"


def _header(lock: Lock) -> list[str]:
    where = f"Python {lock.python_version} on {lock.markers.get('sys_platform', '?')} {lock.markers.get('platform_machine', '')}"
    lines = [f"# written by envdoctor lock {__version__}: {where.strip()}"]
    if lock.matrix:
        lines.append(f"# matrix {lock.matrix}" + (f"; certified tier {lock.certificate.tier} on {lock.certificate.gpu or lock.certificate.device}"
                                                  if lock.certificate else ""))
    lines.append("# install with: pip install --require-hashes --no-deps -r THIS_FILE")
    return lines


def render_requirements(lock: Lock) -> str:
    """A hashed requirements file (pip's --require-hashes); source trees and checkouts, which have no hash, commented."""
    lines = _header(lock)
    left: list[str] = []
    for pkg in lock.packages:
        src = pkg.source
        if isinstance(src, Artifact):
            spec = f"{pkg.name}=={pkg.version}" if pkg.origin == "index" else f"{pkg.name} @ {src.url}"
            lines.append(spec + "".join(f" \\\n    --hash={alg}:{digest}" for alg, digest in sorted(src.hashes.items())))
        elif isinstance(src, Directory):
            left.append(f"# {pkg.name} @ file://{src.path}{'  (editable)' if src.editable else ''}")
        else:
            assert isinstance(src, Vcs)
            left.append(f"# {pkg.name} @ {src.type}+{src.url}@{src.commit_id}")
    if left:
        lines += ["", "# not hashable, so not installable with --require-hashes; install these separately:", *left]
    return "\n".join(lines) + "\n"


def render_summary(lock: Lock, written: str | None) -> str:
    """What was locked and what was not, for stderr."""
    origins: dict[str, int] = {}
    for pkg in lock.packages:
        origins[pkg.origin] = origins.get(pkg.origin, 0) + 1
    words = {"index": "from the index", "installer-record": "from the installer's records", "local-file": "local files"}
    how = ", ".join(f"{n} {words[o]}" for o, n in sorted(origins.items()))
    lines = [f"envdoctor lock: {'wrote ' + written + ': ' if written else ''}{len(lock.packages)} packages ({how or 'none'})"]
    if lock.skipped:
        lines.append(f"  left out, as pip freeze does: {', '.join(lock.skipped)} (--all keeps them)")
    if lock.certificate:
        lines.append(f"  certified: tier {lock.certificate.tier} on {lock.certificate.gpu or lock.certificate.device}")
    for u in lock.unlocked:
        lines.append(f"  NOT LOCKED {u.name} {u.version}: {u.reason}")
    return "\n".join(lines) + "\n"
