"""The uv backend: `uv pip install --dry-run --python <target>` (against the environment) or `uv pip compile`."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .._env.probe import find_uv
from ._common import constraints_args, index_args, install_args, query_status, requested_args, run_tool
from ._conflict import from_uv
from ._pipconf import pip_constraints, pip_sources, uv_has_own_sources
from .backend import Query
from .model import Install, Resolution, Sources

__all__ = ["UV_PLATFORMS", "UvBackend", "find_uv", "read_changes", "read_pinned", "uv_env", "uv_sources_args"]

UV_PLATFORMS = {
    "linux": "x86_64-manylinux_2_28",
    "linux-aarch64": "aarch64-manylinux_2_28",
    "macos": "aarch64-apple-darwin",
    "macos-x86_64": "x86_64-apple-darwin",
    "windows": "x86_64-pc-windows-msvc",
}
_CHANGE = re.compile(r"^\s*(?P<op>[+-])\s+(?P<name>[A-Za-z0-9._-]+)(\[[^\]]*\])?==(?P<version>\S+)")
_PINNED = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(\[[^\]]*\])?==(?P<version>[^\s;]+)")


def uv_sources_args(sources: Sources, python: str | None = None) -> list[str]:
    """uv options for the sources; with none given, pip's configured indexes (uv would not read them)."""
    from_pip_config = sources == Sources() and not uv_has_own_sources()
    if from_pip_config:
        prefix = os.path.dirname(os.path.dirname(python)) if python else None
        sources = pip_sources(prefix)
    # pip ignores a missing local index with a warning; uv would fail on it
    present = tuple(url for url in sources.extra_index_urls
                    if not (url.startswith("file://") and not os.path.isdir(url[len("file://"):])))
    args = index_args(dataclasses.replace(sources, extra_index_urls=present))
    for path in pip_constraints(os.path.dirname(os.path.dirname(python)) if python else None):
        args += ["-c", path]  # pip's configured constraints hold uv's resolution and steps too
    # uv's default index strategy (the first index that has a name serves all its versions) stays for sources a
    # matrix or a requirements file names: a best match across them lets any extra index shadow a name
    # (dependency confusion; issue 15, finding 3). The user's own pip configuration is another matter: pip picks
    # the best match across its configured index, extra indexes and find-links, and uv must plan what pip would
    # (a find-links folder holding torch 2.13 would otherwise hide every other torch release from uv).
    if from_pip_config and (sources.extra_index_urls or sources.find_links):
        args += ["--index-strategy", "unsafe-best-match"]
    return args + list(sources.extra_args)


def uv_env() -> dict[str, str]:
    """The environment for a uv subprocess: no colour, no progress bars, never download a Python."""
    env = dict(os.environ)
    env.update(NO_COLOR="1", UV_NO_PROGRESS="1", UV_PYTHON_DOWNLOADS="never")
    return env


class UvBackend:
    """uv: `uv pip install --dry-run --python <target>` against an environment, `uv pip compile` from scratch."""

    name: Literal["uv"] = "uv"

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def resolve(self, query: Query) -> Resolution:
        """Resolve with uv; `install --dry-run` keeps what is installed, `compile` resolves from scratch."""
        if query.require_hashes and query.against_installed:
            # uv's dry run downloads nothing, so it never compares a hash (uv 0.13.9 said "Would install" with a
            # wrong one); pip's dry run fetches each artifact and refuses a mismatch. The install step is uv's.
            from ._pip import PipBackend

            return PipBackend().resolve(query)
        with tempfile.TemporaryDirectory(prefix="envdoctor-uv-") as tmp:
            cmd = self._resolve_command(query)
            cmd += constraints_args(tmp, query.constraints)
            cmd += uv_sources_args(query.sources, query.python)
            stdin = None
            if query.against_installed:
                cmd += requested_args(tmp, query.requested)
            else:
                stdin = "".join(r.requirement + "\n" for r in query.requested)
            proc, seconds = run_tool("uv", cmd, timeout=query.timeout, env=self.environment(), stdin=stdin,
                                     status=query_status("uv", query))
        raw = proc.stdout + proc.stderr
        if proc.returncode != 0:
            return Resolution(False, "uv", conflict=from_uv(raw, query.requested), seconds=seconds, raw=raw,
                              command=tuple(cmd))
        keys = {r.key for r in query.requested}
        if query.against_installed:
            installs, removes = read_changes(proc.stderr + "\n" + proc.stdout, keys)
        else:
            installs, removes = read_pinned(proc.stdout, keys), ()
        return Resolution(True, "uv", installs=installs, removes=removes, seconds=seconds, raw=raw,
                          command=tuple(cmd))

    def _resolve_command(self, query: Query) -> list[str]:
        exe = query.python or sys.executable
        if query.against_installed:
            cmd = [self.executable, "pip", "install", "--dry-run", "--python", exe]
        else:
            cmd = [self.executable, "pip", "compile", "-", "--no-header", "--no-annotate", "--quiet"]
            cmd += ["--python", exe] if query.python_version is None else ["--python-version", query.python_version]
            if query.platform is not None:
                cmd += ["--python-platform", UV_PLATFORMS.get(query.platform, query.platform)]
            if query.python_version is not None or query.platform is not None:
                cmd += ["--only-binary", ":all:"]
        if query.only_binary and "--only-binary" not in cmd:  # uv refuses the two together
            cmd.append("--no-build")
        if query.no_deps:
            cmd.append("--no-deps")
        return cmd

    def install_command(self, python: str, specs: Sequence[str], *, sources: Sources, index_url: str | None = None,
                        no_deps: bool = False, constraints: str | None = None,
                        hashed: str | None = None) -> tuple[str, ...]:
        """`uv pip install --python PYTHON` of exact pins; a group's own index replaces all others."""
        cmd = [self.executable, "pip", "install", "--python", python]
        src = sources if index_url is None else Sources(index_url=index_url, find_links=sources.find_links,
                                                        no_index=False, extra_args=sources.extra_args)
        cmd += uv_sources_args(src, python)
        return install_args(cmd, specs, no_deps=no_deps, constraints=constraints, hashed=hashed)

    def uninstall_command(self, python: str, names: Sequence[str]) -> tuple[str, ...]:
        """`uv pip uninstall --python PYTHON NAMES`."""
        return (self.executable, "pip", "uninstall", "--python", python, *names)

    def environment(self) -> dict[str, str]:
        """uv's subprocess environment."""
        return uv_env()


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def read_changes(text: str, keys: AbstractSet[str]) -> tuple[tuple[Install, ...], tuple[tuple[str, Version], ...]]:
    """The ' + name==v' / ' - name==v' lines of `uv pip install --dry-run`."""
    installs: list[Install] = []
    removes: list[tuple[str, Version]] = []
    for line in text.splitlines():
        m = _CHANGE.match(line)
        if not m:
            continue
        version = _version(m.group("version"))
        if version is None:
            continue
        if m.group("op") == "+":
            installs.append(Install(m.group("name"), version, requested=canonicalize_name(m.group("name")) in keys))
        else:
            removes.append((m.group("name"), version))
    return tuple(installs), tuple(removes)


def read_pinned(text: str, keys: AbstractSet[str]) -> tuple[Install, ...]:
    """The 'name==version' lines of `uv pip compile`."""
    out: list[Install] = []
    for line in text.splitlines():
        m = _PINNED.match(line.strip())
        version = _version(m.group("version")) if m else None
        if m and version is not None:
            out.append(Install(m.group("name"), version, requested=canonicalize_name(m.group("name")) in keys))
    return tuple(out)

