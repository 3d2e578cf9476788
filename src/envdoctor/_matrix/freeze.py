"""Write a matrix (TOML text) from an environment, so a working setup can be shared and later checked."""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterable
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from .._env.environment import Distribution, Environment

# Installer tooling is not part of a stack; envdoctor does not pin itself.
SKIP = frozenset({"pip", "setuptools", "wheel", "uv", "envdoctor", "distribute"})
# Packages whose local label names a build on the PyTorch index (torch 2.4.0+cu118).
TORCH_FAMILY = frozenset({"torch", "torchvision", "torchaudio", "triton"})
_TORCH_LOCAL = re.compile(r"^(cu\d{2,3}|cpu|rocm\d+(\.\d+)*|xpu)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _s(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False)


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_s(v) for v in values) + "]"


def range_of(version: Version) -> str:
    """The range a working version stands for: same major (>=1) or same minor (0.x), at least this release."""
    base = version.public
    if version.major >= 1:
        return f">={base},<{version.major + 1}"
    minor = version.minor
    return f">={base},<0.{minor + 1}"


def _source(dist: Distribution) -> tuple[str | None, bool]:
    """(VCS/URL source, editable) from direct_url.json (PEP 610), or (None, False) for an index install."""
    if not dist.direct_url:
        return None, False
    try:
        data: dict[str, Any] = json.loads(dist.direct_url)
    except ValueError:
        return None, False
    editable = bool(data.get("dir_info", {}).get("editable"))
    url = data.get("url")
    vcs = data.get("vcs_info")
    if vcs and url:
        ref = vcs.get("commit_id") or vcs.get("requested_revision")
        return f"{vcs.get('vcs', 'git')}+{url}" + (f"@{ref}" if ref else ""), editable
    if url and url.startswith(("http://", "https://")) and "archive_info" in data:
        return url, editable
    return None, editable


def _package(dist: Distribution, ranges: bool, made_from: str) -> list[str]:
    version = dist.version
    assert version is not None
    spec = range_of(version) if ranges else f"=={version.public}"
    lines = ["[[packages]]", f"name = {_s(dist.name)}", f"specifier = {_s(spec)}"]
    local = version.local
    if local:
        lines.append(f"local = {_s(local)}")
        if dist.key in TORCH_FAMILY and _TORCH_LOCAL.match(local):
            lines.append(f"index_url = {_s('pytorch:' + local)}")
    source, editable = _source(dist)
    how = "an editable install" if editable else "an install"
    if source is not None:
        lines.append(f"source = {_s(source)}")
        how = f"an install from {source}"
    lines.append(f"reason = {_s(f'{dist.name} {dist.raw_version} was working in {made_from} ({how}).')}")
    lines.append(f"evidence = {_list([f'{dist.path}/METADATA: Version: {dist.raw_version}'])}")
    return lines


def _check_version_and_extends(version: str, extends: str | None) -> None:
    """Refuse what would write a matrix that does not load: a version packaging cannot read, an unknown base."""
    from packaging.version import InvalidVersion

    from ..errors import MatrixError, UsageError
    from .loader import resolve_ref

    try:
        Version(version)
    except InvalidVersion:
        raise UsageError(f"--version {version!r}: not a version number (e.g. 2026.11 or 1.0)") from None
    if extends:
        try:
            resolve_ref(extends)
        except MatrixError as e:
            raise UsageError(f"--extends {extends}: {e}") from e


def freeze(env: Environment, name: str, *, version: str | None = None, ranges: bool = False,
           extends: str | None = None, only: Iterable[str] = (), today: _dt.date | None = None) -> str:
    """A matrix in TOML from `env`: every installed distribution (or only `only`) pinned, or as ranges."""
    if not _NAME.match(name):
        from ..errors import UsageError

        raise UsageError(f"--name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
    day = today or _dt.date.today()
    version = version or f"{day.year}.{day.month:02d}.{day.day:02d}"
    _check_version_and_extends(version, extends)
    wanted = {canonicalize_name(n) for n in only}
    dists = [d for k, d in sorted(env.distributions.items())
             if k not in SKIP and d.version is not None and (not wanted or k in wanted)]
    missing = sorted(wanted - {d.key for d in dists})
    if missing:
        import difflib

        from ..errors import UsageError

        hints = [f"{m} (did you mean {h[0]!r}?)" if (h := difflib.get_close_matches(m, list(env.distributions), n=1))
                 else m for m in missing]
        raise UsageError(f"--only: not installed in {env.executable}: {', '.join(hints)}")
    py = env.python_version
    made_from = f"{env.executable} (Python {py}) on {day.isoformat()}"
    out = [
        f"# Frozen by `envdoctor matrix freeze` from {env.executable} on {day.isoformat()}.",
        "schema_version = 1",
        f"name = {_s(name)}",
        f"version = {_s(version)}",
        f"title = {_s(f'Frozen from {env.executable}')}",
        f"description = {_s(f'{len(dists)} distributions as installed in {made_from}.')}",
    ]
    if extends:
        out.append(f"extends = {_s(extends)}")
    py_spec = f">={py.major}.{py.minor}" if ranges else f"=={py.major}.{py.minor}.*"
    out += ["", "[python]", f"specifier = {_s(py_spec)}",
            f"reason = {_s(f'The environment was frozen on Python {py}.')}",
            f"evidence = {_list([f'{env.executable}: Python {py}'])}"]
    plat, machine = env.markers.get("sys_platform", ""), env.markers.get("platform_machine", "")
    if plat:
        marker = f"sys_platform == '{plat}'" + (f" and platform_machine == '{machine}'" if machine else "")
        out += ["", "[[platform]]", f"marker = {_s(marker)}",
                f"reason = {_s(f'The environment was frozen on {plat} {machine}.'.replace(' .', '.'))}",
                f"evidence = {_list([f'{env.executable}: sys_platform={plat}, platform_machine={machine}'])}"]
    for d in dists:
        out.append("")
        out += _package(d, ranges, made_from)
    return "\n".join(out) + "\n"
