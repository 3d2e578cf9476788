"""The value rules of the matrix format that a type cannot say: names, labels, indexes, sources, patterns, depth.

One set of rules for every command: `schema.py` applies them while a matrix is validated (the only way a matrix
is compiled, for `check`, `fix`, `matrix validate` alike), so no command accepts what another refuses. Each
check raises ValueError with the sentence a user reads; `FIELD_CHECKS` says which field each one guards and
`MATRIX_CHECKS` adds cross-field rules. A matrix is data someone may share (issue 15): a package name is a
PEP 508 name, never a pip option (`--index-url=x`) or shell text; a local label is a PEP 440 local segment;
an index is `pytorch:<tag>` or an http(s)/file URL; a symptom pattern must be safe to search with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .gpu import CudaRule
from .model import (
    InstallGroup,
    KnownBadRule,
    Matrix,
    NamedRule,
    PackageRule,
    ProbeRef,
    RenameRule,
    SymptomRule,
)

# https://peps.python.org/pep-0508/#names
_PEP508_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# https://peps.python.org/pep-0440/#local-version-identifiers (the part after '+')
_LOCAL = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$", re.IGNORECASE)
# `pytorch:<tag>` names the PyTorch index of one build; the fixer maps it to a URL from configuration.
SYMBOLIC_INDEX = re.compile(r"^pytorch:(cu\d{2,3}|cpu|rocm\d+(\.\d+)*|xpu)$")
_URL_SCHEMES = ("http", "https", "file")
# A direct reference pip and uv take: `name @ git+https://...`, `name @ https://.../x.whl`, `name @ file:///...`.
_SOURCE_SCHEME = re.compile(r"^((git|hg|svn|bzr)\+)?(https?|ssh|file)$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|\*))*$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

# The deepest a matrix file nests tables and arrays (probe params included). The format itself needs 5
# (`gpu.workloads[0].evidence[0]`); a deeper file is a mistake or an attack on the recursive parts (issue 15).
MAX_DEPTH = 32
# Integers the format holds (orders, tiers) fit in 64 bits; a 400-digit number is a mistake.
MAX_INT = 2**63 - 1


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def dist_name(value: str) -> None:
    """A distribution name as PEP 508 spells it; a pip option or shell text is refused by name."""
    if _PEP508_NAME.match(value):
        return
    hint = " (it looks like a pip option)" if value.startswith("-") else ""
    raise ValueError(f"invalid package name {_shown(value)}{hint}: a PEP 508 name has only letters, digits, "
                     "'.', '_' and '-', and starts and ends with a letter or digit")


def dist_names(values: Iterable[str]) -> None:
    """Every entry of a list is a PEP 508 name."""
    for v in values:
        dist_name(v)


def local_label(value: str) -> None:
    """A PEP 440 local version label without its '+', e.g. 'cu118'."""
    if not _LOCAL.match(value):
        raise ValueError(f"invalid local version label {_shown(value)}: PEP 440 allows letters and digits in "
                         "segments joined by '.', '_' or '-', e.g. 'cu118' (no '+')")


def index_problem(value: str) -> str | None:
    """None when an index is `pytorch:<tag>` or an http(s)/file URL, else what is wrong with it."""
    if SYMBOLIC_INDEX.match(value):
        return None
    try:
        url = urlsplit(value)
    except ValueError:
        url = None
    if url is not None and url.scheme in _URL_SCHEMES and (url.netloc or value.startswith("file:///")) \
            and not any(ch.isspace() or ord(ch) < 32 for ch in value):
        return None
    return f"index {_shown(value)} is neither 'pytorch:<cuXYZ|cpu|rocmX.Y|xpu>' nor an http(s) or file URL"


def index_ref(value: str) -> None:
    """An index hint: `pytorch:<tag>` or an http(s)/file URL."""
    problem = index_problem(value)
    if problem:
        raise ValueError(problem)


def direct_source(value: str) -> None:
    """A direct reference an installer takes after 'name @': a VCS, http(s) or file URL, one token."""
    try:
        url = Requirement(f"x @ {value}").url
    except InvalidRequirement:
        url = None
    try:
        scheme = urlsplit(value).scheme if url == value else ""
    except ValueError:  # 'https://[x': not a URL
        scheme = ""
    if not _SOURCE_SCHEME.match(scheme) or any(ch.isspace() for ch in value):
        raise ValueError(f"invalid source {_shown(value)}: give a URL such as 'git+https://host/repo@tag', "
                         "'https://host/pkg.whl' or 'file:///path'")


_HASH = re.compile(r"^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$")


def artifact_hashes(values: Iterable[str]) -> None:
    """Each entry is 'sha256:<hex>' (or sha384/sha512), as pip's --hash takes it."""
    for v in values:
        if not _HASH.match(v):
            raise ValueError(f"invalid hash {_shown(v)}: expected 'sha256:' and 64 lower-case hex digits "
                             "(pip hash FILE prints it)")


def _pattern(what: str, regex: re.Pattern[str], example: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if not regex.match(value):
            raise ValueError(f"invalid {what} {_shown(value)}: expected {example}")

    return check


identifier = _pattern("keyword", _IDENTIFIER, "a Python identifier such as 'max_seq_length'")
dotted = _pattern("dotted name", _DOTTED, "a dotted Python name such as 'trl.SFTConfig'")
slug = _pattern("name", _SLUG, "lower-case letters, digits, '.', '_' or '-'")


def safe_pattern(value: str) -> None:
    """A symptom pattern that is a regular expression safe to search any text with (no catastrophic backtracking)."""
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as e:
        raise ValueError(f"invalid regular expression {_shown(value)}: {e}") from e
    from .._drift.patterns import pattern_problem

    problem = pattern_problem(value)
    if problem:
        raise ValueError(f"unsafe regular expression {_shown(value)}: {problem}")


# (class, field) -> the checks of that field, besides its own `doc(check=...)`.
FIELD_CHECKS: dict[tuple[type, str], tuple[Callable[[Any], None], ...]] = {
    (PackageRule, "name"): (dist_name,),
    (PackageRule, "local"): (local_label,),
    (PackageRule, "index_url"): (index_ref,),
    (PackageRule, "source"): (direct_source,),
    (PackageRule, "hashes"): (artifact_hashes,),
    (InstallGroup, "index_url"): (index_ref,),
    (NamedRule, "name"): (dist_name,),
    (KnownBadRule, "name"): (dist_name,),
    (RenameRule, "package"): (dist_name,),
    (RenameRule, "callable"): (dotted,),
    (RenameRule, "target"): (dotted,),
    (RenameRule, "old"): (identifier,),
    (RenameRule, "new"): (identifier,),
    (RenameRule, "via"): (identifier,),
    (SymptomRule, "id"): (slug,),
    (SymptomRule, "pattern"): (safe_pattern,),
    (ProbeRef, "name"): (slug,),
    (CudaRule, "packages"): (dist_names,),
}


def _unique(section: str) -> Callable[[Any], str | None]:
    def check(m: Any) -> str | None:
        seen: set[str] = set()
        for r in getattr(m, section):
            key = canonicalize_name(r.name)
            if key in seen:
                return f"{section}: {r.name!r} is listed twice"
            seen.add(key)
        return None

    return check


# class -> cross-field rules `(obj) -> message | None`, besides the class's own `invariants`.
MATRIX_CHECKS: dict[type, tuple[Callable[[Any], str | None], ...]] = {
    Matrix: (_unique("absent"), _unique("protected"), _unique("install_groups")),
}


def depth_problem(data: Any, limit: int = MAX_DEPTH) -> tuple[str, str] | None:
    """(key path, message) for the first value nested deeper than `limit` or an integer out of range, else None.

    Iterative on purpose: the point is to refuse what would exhaust the recursive parts (pydantic, JSON).
    """
    todo: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while todo:
        value, loc = todo.pop()
        if len(loc) > limit:
            return where(loc), f"nested deeper than {limit} levels"
        if isinstance(value, dict):
            todo.extend((v, (*loc, k)) for k, v in value.items())
        elif isinstance(value, list):
            todo.extend((v, (*loc, i)) for i, v in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            return where(loc), f"integer out of range (at most {MAX_INT})"
        elif isinstance(value, float) and not math.isfinite(value):
            return where(loc), f"{value} is not a number a matrix can hold"
    return None


def where(loc: tuple[Any, ...]) -> str:
    """A key path as a user writes it: 'packages[0].name'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"
