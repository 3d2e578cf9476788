"""Read back a journal safely: re-derive every command from the stored plan, and check the snapshot's paths.

The journal and snapshot files live on disk between two processes, so whoever can write them could make
envdoctor run anything, or restore files anywhere, if they were trusted. They are not: a step's command is
spelled anew by the plan's backend from the step's validated data (exact pins, names the target has, index
URLs), and a stored command that differs from the derived one refuses the journal. A snapshot's files must
lie inside the environment's prefix, its copies inside the journal's snapshot folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .._resolver import Backend, Sources, select_backend
from ..errors import FixError
from .plan import Plan, Step, StepKind
from .snapshot import Snapshot
from .workdir import workdir_for

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9.+!_-]+$")
_URL_SCHEMES = ("https", "http", "file")
_HASHED_FILE = re.compile(r"^hashed-[0-9]+\.txt$")
_HASH = re.compile(r"^--hash=(sha256|sha384|sha512):[0-9a-f]+$")


class TamperedError(FixError):
    """A journal or snapshot that is not what envdoctor writes: nothing from it is run or restored."""

    exit_code = 2


def _url(value: str, what: str) -> None:
    if urlparse(value).scheme not in _URL_SCHEMES:
        raise TamperedError(f"the fix journal's {what} {value!r} is not an http(s) or file URL")


def _sources(src: Sources) -> None:
    for u in (*([src.index_url] if src.index_url else []), *src.extra_index_urls):
        _url(u, "index")
    for f in src.find_links:
        if f.startswith("-") or not (os.path.isabs(f) or urlparse(f).scheme in _URL_SCHEMES):
            raise TamperedError(f"the fix journal's find-links {f!r} is neither an absolute folder nor a URL")


def _spec(spec: str, names: Collection[str] | None) -> None:
    """A step's package: an exact pin (name==version) or a direct reference, of a name the target has."""
    try:
        req = Requirement(spec)
    except InvalidRequirement as e:
        raise TamperedError(f"the fix journal's step package {spec!r} is not a requirement") from e
    pins = list(req.specifier)
    exact = len(pins) == 1 and pins[0].operator == "==" and req.url is None
    if not (exact or (req.url is not None and not pins)) or spec.lstrip().startswith("-"):
        raise TamperedError(f"the fix journal's step package {spec!r} is neither an exact pin nor a direct reference")
    if req.url is not None:
        _url(req.url.removeprefix("git+"), "direct reference")
    if names is not None and canonicalize_name(req.name) not in names:
        raise TamperedError(f"the fix journal's step installs {req.name}, which the target does not name")


def _command(backend: Backend, plan: Plan, step: Step, python: str) -> tuple[str, ...]:
    if step.kind is StepKind.UNINSTALL:
        return tuple(backend.uninstall_command(python, step.packages))
    cfile = None if step.no_deps or not plan.constraints_file else plan.constraints_file
    hashed = getattr(step, "hashed", "")
    extra: dict[str, Any] = {"hashed": hashed} if hashed else {}
    return tuple(backend.install_command(python, step.packages, sources=plan.sources, index_url=step.index_url,
                                         no_deps=step.no_deps, constraints=cfile, **extra))


def _hashed_file(plan: Plan, step: Step) -> None:
    """A hash-checked step's requirements file (pip reads options from it too): its own lines, nothing else."""
    path, text = getattr(step, "hashed", ""), getattr(step, "hashed_text", "")
    if not path:
        return
    if not _HASHED_FILE.match(os.path.basename(path)) or os.path.dirname(path) != str(workdir_for(plan.prefix)):
        raise TamperedError(f"the fix journal's hashed requirements file {path!r} is not envdoctor's")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for line, spec in zip(lines, step.packages, strict=False):
        rest = line[len(spec):].split() if line.startswith(spec + " ") or line == spec else None
        if rest is None or not all(_HASH.match(h) for h in rest):
            raise TamperedError(f"the fix journal's hashed line {line!r} is not {spec} with its --hash options")
    if len(lines) != len(step.packages):
        raise TamperedError("the fix journal's hashed requirements do not match the step's packages")


def derived_steps(plan: Plan, names: Collection[str] | None = None, python: str | None = None) -> tuple[Step, ...]:
    """The plan's steps with their commands spelled anew; a journal whose stored commands differ is refused.

    names: the canonical names the target installs or removes (None: not checked); python: the interpreter
    the derived commands run (default: the plan's; the stored commands are compared against the plan's).
    """
    if plan.backend not in ("pip", "uv"):
        raise TamperedError(f"the fix journal names the installer {plan.backend!r}; envdoctor uses pip or uv")
    backend = select_backend(plan.backend)
    _sources(plan.sources)
    if plan.constraints_file and plan.constraints_file != str(workdir_for(plan.prefix) / "constraints.txt"):
        raise TamperedError(f"the fix journal's constraints file {plan.constraints_file!r} is not envdoctor's")
    for c in plan.constraints:
        _spec(c, None)
    out: list[Step] = []
    for step in plan.steps:
        if step.kind is StepKind.UNINSTALL:
            bad = [n for n in step.packages if not _NAME.match(n) or (names is not None and canonicalize_name(n)
                                                                    not in names)]
            if bad:
                raise TamperedError(f"the fix journal's removal names {bad} are not the target's package names")
        else:
            for spec in step.packages:
                _spec(spec, names)
            if step.index_url is not None:
                _url(step.index_url, "index")
            _hashed_file(plan, step)
        # The installer's own path (command[0]) may differ between processes; it is never taken from the file.
        if _command(backend, plan, step, plan.python)[1:] != tuple(step.command[1:]):
            raise TamperedError(f"the fix journal's command for step {step.title!r} is not the one its plan "
                                f"makes (edited by hand?); nothing from it is run")
        out.append(replace(step, command=_command(backend, plan, step, python or plan.python)))
    return tuple(out)


def _inside(path: str, roots: Collection[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def checked_snapshot(snap: Snapshot, python: str, prefix: str, folder: str, sites: Collection[str] = ()) -> Snapshot:
    """The snapshot, if it describes this environment and keeps its copies in `folder`; else TamperedError.

    sites: the environment's own site folders as inspected now (a venv may see the system's too).
    """
    problems: list[str] = []
    if os.path.realpath(snap.python) != os.path.realpath(python):
        problems.append(f"it is of {snap.python}, not {python}")
    if os.path.realpath(snap.folder) != os.path.realpath(folder):
        problems.append(f"its folder {snap.folder} is not the journal's {folder}")
    prefixes = [os.path.realpath(p) for p in (prefix, *sites)]
    outside = [p for p in (*snap.site_dirs, *snap.site_entries) if not _inside(p, prefixes)]
    for key, saved in snap.saved.items():
        if not _NAME.match(key) or not _VERSION.match(saved.version):
            problems.append(f"saved entry {key!r} {saved.version!r} is not a package name and version")
        if not _inside(saved.root, [os.path.realpath(folder)]):
            problems.append(f"the copy of {key} is kept outside the snapshot folder")
        if saved.wheel_dir and not _inside(saved.wheel_dir, [os.path.realpath(folder)]):
            problems.append(f"the wheel of {key} is kept outside the snapshot folder")
        outside += [f for f in saved.files if not _inside(f, prefixes)]
    bad_versions = [k for k, v in snap.versions.items() if not (_NAME.match(k) and _VERSION.match(v))]
    if bad_versions:
        problems.append(f"the recorded versions of {bad_versions[:3]} are malformed")
    if outside:
        problems.append(f"{len(outside)} of its paths lie outside {prefix} (e.g. {outside[0]})")
    if problems:
        raise TamperedError(f"{Path(folder) / 'snapshot.json'} does not describe {prefix}: " + "; ".join(problems)
                            + "; nothing was restored from it")
    return snap
