"""Put an environment back to its snapshot after a failed step, and verify it with `pip freeze`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass

from .._env.environment import Environment, facts_of, from_facts
from .._env.gpu import GpuInfo
from .._resolver._pip import pip_command, pip_env
from .snapshot import Snapshot, _link_or_copy, _mirror, changed_since, pip_freeze, record_files


@dataclass(frozen=True)
class RollbackResult:
    """What the rollback did, and whether `pip freeze` now equals the snapshot's."""

    restored: tuple[str, ...]
    removed: tuple[str, ...]
    failed: tuple[str, ...]
    verified: bool
    difference: tuple[str, ...] = ()


def _inspect(python: str) -> Environment:
    return from_facts(facts_of(python), GpuInfo(False, reason="not inspected"))


def _remove_installed(env: Environment, key: str) -> bool:
    """Remove the currently installed `key` by its RECORD (pip itself may be the broken part)."""
    dist = env.get(key)
    if dist is None:
        return True
    files = record_files(dist.path, dist.location) or []
    for f in files:
        try:
            if os.path.isdir(f) and not os.path.islink(f):
                continue
            os.unlink(f)
        except OSError:
            pass
    dirs = sorted({os.path.dirname(f) for f in files}, key=len, reverse=True)
    for d in dirs:
        _prune_empty(d, dist.location)
    if os.path.isdir(dist.path):
        shutil.rmtree(dist.path, ignore_errors=True)
    return not os.path.exists(dist.path)


def _prune_empty(d: str, stop: str) -> None:
    stop = os.path.normpath(stop)
    while d and os.path.normpath(d).startswith(stop) and os.path.normpath(d) != stop:
        pycache = os.path.join(d, "__pycache__")
        if os.path.isdir(pycache) and not any(not n.endswith(".pyc") for n in os.listdir(pycache)):
            shutil.rmtree(pycache, ignore_errors=True)
        try:
            os.rmdir(d)
        except OSError:
            return
        d = os.path.dirname(d)


def _pip_leftovers(snapshot: Snapshot) -> None:
    """pip, when killed, leaves its '~name' stash folders in site-packages; they were not there before."""
    before = set(snapshot.site_entries)
    for site in snapshot.site_dirs:
        if not os.path.isdir(site):
            continue
        for entry in os.listdir(site):
            path = os.path.join(site, entry)
            if entry.startswith("~") and path not in before:
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)


def _partial_folders(snapshot: Snapshot) -> None:
    """Remove what an installer stopped midway (killed, a full disk) left in site-packages: new entries that
    were not there before and that no installed distribution's RECORD owns (a half-unpacked package folder)."""
    before = set(snapshot.site_entries)
    new = [os.path.join(site, e) for site in snapshot.site_dirs if os.path.isdir(site) for e in os.listdir(site)
           if os.path.join(site, e) not in before and e != "__pycache__"]
    if not new:
        return
    env = _inspect(snapshot.python)
    owned: set[str] = set()
    for dist in env.distributions.values():
        owned.add(os.path.normpath(dist.path))
        for f in record_files(dist.path, dist.location) or ():
            for site in snapshot.site_dirs:
                if f.startswith(os.path.normpath(site) + os.sep):
                    owned.add(os.path.join(os.path.normpath(site), f[len(os.path.normpath(site)) + 1:].split(os.sep)[0]))
    for path in new:
        if os.path.normpath(path) in owned:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


def rollback(snapshot: Snapshot) -> RollbackResult:
    """Restore every distribution the snapshot holds, remove the ones added since, and verify."""
    env = _inspect(snapshot.python)
    changed = changed_since(snapshot, env)
    restored: list[str] = []
    removed: list[str] = []
    failed: list[str] = []
    _pip_leftovers(snapshot)
    for key, (before, after) in sorted(changed.items()):
        if before is None and after is not None:
            (removed if _remove_installed(env, key) else failed).append(key)
    for saved_key, saved in snapshot.saved.items():
        if after_version(env, saved_key) == saved.version and saved_key not in changed and _intact(saved):
            # The installer put it back itself (pip undoes its uninstall on failure) but may have left the new
            # version's half-written files in its folders (a full disk, a kill): those go.
            _sweep_orphans(saved.files, snapshot.site_dirs, env, saved_key)
            continue
        _remove_installed(env, saved_key)
        if saved.wheel_dir:
            ok = _install_wheel(snapshot.python, saved.name, saved.version, saved.wheel_dir)
        else:
            ok = _restore_files(saved.files, saved.root)
            _sweep_orphans(saved.files, snapshot.site_dirs, env, saved_key)
        (restored if ok else failed).append(saved_key)
    # Changed, but not predicted by the plan and so not kept: the best left is pip's cache or index.
    env = _inspect(snapshot.python)
    for key, (before, after) in sorted(changed_since(snapshot, env).items()):
        if key in snapshot.saved or before is None:
            continue
        if after is not None:
            _remove_installed(env, key)
        wheels = os.path.join(snapshot.folder, "wheels")  # the pylock's packed wheels: offline first
        ok = (os.path.isdir(wheels) and _pip_install(snapshot.python, f"{key}=={before}", "--no-index",
                                                     "--find-links", wheels)) or \
            _pip_install(snapshot.python, f"{key}=={before}")
        (restored if ok else failed).append(key)
    _pip_leftovers(snapshot)
    _partial_folders(snapshot)
    difference: tuple[str, ...] = ()
    verified = False
    if snapshot.freeze:
        now = pip_freeze(snapshot.python)
        verified = now == snapshot.freeze
        if not verified:
            a, b = set(snapshot.freeze.splitlines()), set(now.splitlines())
            difference = tuple([f"-{x}" for x in sorted(a - b)] + [f"+{x}" for x in sorted(b - a)])
    else:
        verified = not changed_since(snapshot, _inspect(snapshot.python))
    return RollbackResult(tuple(restored), tuple(removed), tuple(failed), verified, difference)


def _sweep_orphans(files: tuple[str, ...], sites: tuple[str, ...], env: Environment, key: str) -> None:
    """Remove what a killed installer half-wrote inside the package folders of a restored distribution.

    Only files under the distribution's own top-level folders that neither it nor any other installed
    distribution lists in its RECORD are removed.
    """
    keep = set(files)
    roots = {os.path.normpath(s) for s in sites}
    tops: set[str] = set()
    for f in files:
        for root in roots:
            if f.startswith(root + os.sep):
                first = os.path.join(root, f[len(root) + 1:].split(os.sep, 1)[0])
                if os.path.isdir(first) and not first.endswith((".dist-info", ".data")) and \
                        os.path.basename(first) != "__pycache__":
                    tops.add(first)
    if not tops:
        return
    for other_key, dist in env.distributions.items():
        if other_key != key:
            keep.update(record_files(dist.path, dist.location) or [])
    for top in tops:
        for dirpath, _, names in os.walk(top, topdown=False):
            for name in names:
                path = os.path.join(dirpath, name)
                if path not in keep:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
            if dirpath != top:
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)


def after_version(env: Environment, key: str) -> str | None:
    dist = env.get(key)
    return dist.raw_version if dist is not None else None


def _intact(saved) -> bool:  # type: ignore[no-untyped-def]
    return all(os.path.lexists(f) for f in saved.files)


def _restore_files(files: tuple[str, ...], root: str) -> bool:
    ok = True
    for f in files:
        src = _mirror(f, root)
        try:
            _link_or_copy(src, f)
        except OSError:
            ok = False
    return ok


def _install_wheel(python: str, name: str, version: str, wheel_dir: str) -> bool:
    return _pip_install(python, f"{name}=={version}", "--no-index", "--find-links", wheel_dir)


def _pip_install(python: str, spec: str, *extra: str) -> bool:
    cmd = [*pip_command(python), "install", "--no-deps", "--no-input", *extra, spec]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=pip_env(), timeout=1800).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
