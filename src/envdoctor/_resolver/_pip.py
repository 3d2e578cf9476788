"""The pip backend: `<python> -m pip install --dry-run --report`, the resolver pip itself would use."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import ResolutionError
from ._common import constraints_args, index_args, install_args, query_status, requested_args, run_tool
from ._conflict import from_pip, pip_not_found
from .backend import Query
from .model import ConflictKind, Install, Resolution, Sources


# A declared platform name -> pip platform tags. pip expands macOS versions itself but not manylinux_2_X
# (only the legacy manylinux2014/2010 aliases), so every glibc level is listed, newest first.
def _manylinux(arch: str) -> tuple[str, ...]:
    return (*(f"manylinux_2_{i}_{arch}" for i in range(28, 16, -1)), f"manylinux2014_{arch}",
            f"manylinux2010_{arch}", f"manylinux1_{arch}")


PIP_PLATFORMS: dict[str, tuple[str, ...]] = {
    "linux": _manylinux("x86_64"),
    "linux-aarch64": _manylinux("aarch64")[:-2],
    "macos": ("macosx_14_0_arm64", "macosx_14_0_universal2"),
    "macos-x86_64": ("macosx_14_0_x86_64", "macosx_14_0_universal2"),
    "windows": ("win_amd64",),
}


def source_args(sources: Sources) -> list[str]:
    """pip options for explicit sources; none means pip's own configuration decides."""
    return index_args(sources) + list(sources.extra_args)


def pip_command(python: str | None) -> list[str]:
    """`<python> -m pip` of the target interpreter; this interpreter's pip with `--python` when it has none."""
    exe = python or sys.executable
    if python is None or _has_pip(exe):
        return [exe, "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", exe]


@functools.lru_cache(maxsize=32)
def _has_pip(exe: str) -> bool:
    try:
        proc = subprocess.run([exe, "-c", "import pip"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def pip_env() -> dict[str, str]:
    """The environment for a pip subprocess: no version check, no prompts, no colour."""
    env = dict(os.environ)
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_COLOR="1", PYTHONIOENCODING="utf-8")
    return env


class PipBackend:
    """pip: `<python> -m pip install --dry-run --report`, the resolver pip itself would use."""

    name: Literal["pip"] = "pip"

    def resolve(self, query: Query) -> Resolution:
        """Resolve with pip's own resolver and read its JSON installation report."""
        with tempfile.TemporaryDirectory(prefix="envdoctor-pip-") as tmp:
            report = os.path.join(tmp, "report.json")
            cmd = [*pip_command(query.python), "install", "--dry-run", "--report", report, "--progress-bar", "off"]
            cmd += _target_args(query, tmp)
            cmd += constraints_args(tmp, query.constraints)
            cmd += source_args(query.sources)
            cmd += requested_args(tmp, query.requested)
            proc, seconds = run_tool("pip", cmd, timeout=query.timeout, env=self.environment(),
                                     status=query_status("pip", query))
            raw = proc.stdout + proc.stderr
            if proc.returncode != 0 or not os.path.exists(report):
                if "No module named pip" in raw:
                    raise ResolutionError(f"{cmd[0]} has no pip and this pip cannot drive it: {raw.strip()[-200:]}")
                conflict = from_pip(raw, query.requested)
                missing = pip_not_found(raw) if "--only-binary=:all:" in cmd else None
                if missing is not None and conflict.kind is ConflictKind.NOT_FOUND:
                    conflict = dataclasses.replace(conflict, unbuilt=self._sdist_only(query, missing))
                return Resolution(False, "pip", conflict=conflict, seconds=seconds, raw=raw, command=tuple(cmd))
            with open(report, encoding="utf-8") as f:
                data = json.load(f)
        installs = read_report(data, {r.key for r in query.requested})
        return Resolution(True, "pip", installs=installs, seconds=seconds, raw=raw, command=tuple(cmd))

    def _sdist_only(self, query: Query, requirement: str) -> tuple[NormalizedName, ...]:
        """The name of a wheels-only 'no matching distribution' (direct or not) when the index has it as sources only.

        pip's --only-binary hides sdists, so 'from versions: none' may mean 'sdists only'. `pip index versions`
        lists the releases that have any file usable here, sdists included, and builds nothing: a release it lists
        that meets the requested specifier was refused for want of a wheel, not because it does not exist.
        """
        try:
            req = Requirement(requirement)
        except InvalidRequirement:
            return ()
        cmd = [*pip_command(query.python), "index", "versions", req.name, "--pre", *source_args(query.sources)]
        if query.python_version is not None:
            cmd += ["--python-version", query.python_version]
        for tag in PIP_PLATFORMS.get(query.platform, (query.platform,)) if query.platform else ():
            cmd += ["--platform", tag]
        try:
            proc, _ = run_tool("pip", cmd, timeout=min(query.timeout, 120.0), env=self.environment())
        except ResolutionError:
            return ()
        listed = next((ln.split(":", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("Available versions:")), "")
        versions = [v for v in (_version(w.strip()) for w in listed.split(",")) if v is not None]
        return (canonicalize_name(req.name),) if any(req.specifier.contains(v, prereleases=True) for v in versions) else ()

    def install_command(self, python: str, specs: Sequence[str], *, sources: Sources, index_url: str | None = None,
                        no_deps: bool = False, constraints: str | None = None,
                        hashed: str | None = None) -> tuple[str, ...]:
        """`<python> -m pip install` of exact pins; a group's own index replaces the main one, extras stay."""
        cmd = [*pip_command(python), "install", "--no-input", "--progress-bar", "off"]
        cmd += source_args(sources if index_url is None else Sources(
            index_url=index_url, extra_index_urls=sources.extra_index_urls, find_links=sources.find_links,
            extra_args=sources.extra_args))
        return install_args(cmd, specs, no_deps=no_deps, constraints=constraints, hashed=hashed)

    def uninstall_command(self, python: str, names: Sequence[str]) -> tuple[str, ...]:
        """`<python> -m pip uninstall -y NAMES`."""
        return (*pip_command(python), "uninstall", "-y", *names)

    def environment(self) -> dict[str, str]:
        """pip's subprocess environment."""
        return pip_env()


def _target_args(query: Query, tmp: str) -> list[str]:
    """Against the environment, or from scratch for a declared Python and platform (wheels only)."""
    args: list[str] = []
    if not query.against_installed:
        args.append("--ignore-installed")
    if query.only_binary and query.python_version is None and query.platform is None:
        args.append("--only-binary=:all:")
    if query.python_version is not None or query.platform is not None:
        args += ["--only-binary=:all:", "--target", os.path.join(tmp, "target")]
        if query.python_version is not None:
            args += ["--python-version", query.python_version]
        if query.platform is not None:
            for tag in PIP_PLATFORMS.get(query.platform, (query.platform,)):
                args += ["--platform", tag]
    if query.no_deps:
        args.append("--no-deps")
    return args


def read_report(data: dict[str, Any], requested_keys: AbstractSet[str]) -> tuple[Install, ...]:
    """The installs of pip's `--report` JSON (format version 1, pip 22.2 and later)."""
    return tuple(i for i in (_install(item, requested_keys) for item in data.get("install", [])) if i is not None)


def _install(item: dict[str, Any], requested_keys: AbstractSet[str]) -> Install | None:
    meta = item.get("metadata", {})
    try:
        version = Version(meta.get("version", ""))
    except InvalidVersion:
        return None
    url = (item.get("download_info") or {}).get("url")
    inst = Install(meta.get("name", "?"), version, url, bool(item.get("requested")),
                   tuple(meta.get("requires_dist") or ()))
    return Install(inst.name, inst.version, inst.url, inst.requested or inst.key in requested_keys, inst.requires)


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None
