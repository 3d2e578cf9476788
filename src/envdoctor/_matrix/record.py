"""The machinery under the one definition of a matrix: documented fields, sections, and the cheap dict round trip.

A matrix class is a frozen dataclass whose fields are declared with `doc()` (a rule's field: its help text and
the constraints the file format enforces) or `section()` (a field of `Matrix` that holds one rule kind). The
compiled form is built from plain dicts (the cache, pydantic's dump) by `Record.from_dict`, which converts
strings to packaging objects by the field's type and refuses keys it does not know. `schema.py` derives the
pydantic models of the file format from the same fields.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable
from dataclasses import MISSING, field, fields, is_dataclass
from functools import cache
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ..errors import MatrixError

# Bump when the compiled form changes in a way the field shapes do not show (a converter, what a value means).
# The cache key holds it with the package version and `shape()`, so an upgrade never loads a stale entry.
FORMAT_VERSION = 2

# Types that are packaging objects in memory and strings on disk.
TEXT_TYPES: tuple[type, ...] = (SpecifierSet, Requirement, Version, Marker)

# How `matrix show` lists a section: a titled block of rules, a count in one summary line, one inline line,
# or not on its own (install groups head the package blocks).
Listed = Literal["rules", "count", "inline", "hidden"]

Decode = Callable[[Any], Any]


def doc(text: str, default: Any = MISSING, *, factory: Callable[[], Any] | None = None, alias: str | None = None,
        check: Callable[[Any], None] | None = None, required: bool = False, compiled: bool = False,
        **constraints: Any) -> Any:
    """A dataclass field with its help text; `constraints` (gt, ge, le, min_length) are enforced on the file.

    `check(value)` raises ValueError with the message a user reads; `required` makes a field with a default in
    the compiled form mandatory in the file; `compiled` fields are filled in by the loader, never written.
    """
    meta = {"doc": text, "alias": alias, "check": check, "required": required, "compiled": compiled,
            "constraints": constraints}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def section(text: str, *, label: Callable[[Any], str], show: Callable[[Any], str], key: tuple[str, ...] = (),
            head: Callable[[Any], str] | None = None, title: str = "", listed: Listed = "rules",
            one: bool = False) -> Any:
    """A field of a matrix (or of one of its groups) that holds one rule kind: the registry in `kinds.py` reads it.

    `label` names one rule (the key `matrix diff` matches on and the place an evidence check reports), `show`
    says what it requires (diff's old/new), `head` is its line in `matrix show` (default: label and show),
    `key` the fields a child matrix's entry overrides its parent's by (lists only). `one`: a single table
    (`[python]`, default None) instead of a list of tables (`[[packages]]`, default empty).
    """
    meta = {"doc": text, "kind": {"label": label, "show": show, "key": key, "head": head, "title": title,
                                  "listed": listed, "one": one}, "alias": None, "check": None,
            "required": False, "compiled": False, "constraints": {}}
    return field(default=None if one else (), metadata=meta)


def reason() -> Any:
    """The `reason` field every rule has."""
    return doc("Why the rule exists, in one or two sentences.", min_length=1)


def evidence() -> Any:
    """The `evidence` field every rule has."""
    return doc("Where the reason is written down: a release note, a METADATA line, an issue link.", ())


class Record:
    """Base of every matrix class: built from a plain dict (the cache or pydantic's dump), turned back into one."""

    # Cross-field rules of the file format, each `(obj) -> message | None`, applied by the derived schema.
    invariants: ClassVar[tuple[Callable[[Any], str | None], ...]] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """The record from plain values; raises MatrixError on a key the class does not have."""
        decoders, keys = _decoders(cls)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            name = keys.get(key)
            if name is None:
                raise MatrixError(f"{cls.__name__}: unknown key {key!r} (known: {', '.join(sorted(keys))})")
            decode = decoders[name]
            kwargs[name] = value if decode is None or value is None else decode(value)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain values by field name: strings for packaging objects, lists for tuples."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    # Equality, hash and repr as @dataclass(frozen=True) writes them, defined once here: the subclasses say
    # `eq=False, repr=False`, which saves three generated methods per class (each an exec) on every start of
    # `check`, where the matrix classes are created (Python < 3.13 compiles each method on its own).
    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if f.compare)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = (f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)  # type: ignore[arg-type]
        return f"{type(self).__name__}({', '.join(shown)})"


def plain(value: Any) -> Any:
    """A value as JSON and TOML hold it."""
    if isinstance(value, Record) and is_dataclass(value):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, TEXT_TYPES):
        return str(value)
    return value


def optional_arms(tp: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed); a union of several types comes back whole."""
    if get_origin(tp) in (Union, types.UnionType):
        arms = [a for a in get_args(tp) if a is not type(None)]
        nullable = len(arms) < len(get_args(tp))
        if len(arms) == 1:
            return arms[0], nullable
        return Union[tuple(arms)], nullable  # noqa: UP007 - built at run time from a tuple of types
    return tp, False


def _decoder(tp: Any) -> Decode | None:
    tp, _ = optional_arms(tp)
    origin = get_origin(tp)
    if origin is tuple:
        inner = _decoder(get_args(tp)[0])
        return tuple if inner is None else (lambda v: tuple(inner(x) for x in v))
    if origin is dict:
        return dict
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_dict
    if tp in TEXT_TYPES:
        return tp  # type: ignore[no-any-return]
    return None


_EVALUATED: dict[tuple[str, str], Any] = {}


def _evaluated(owner: type, annotation: Any) -> Any:
    """One annotation string of our own classes, evaluated in its module as get_type_hints does, once per
    (module, text): the matrix classes repeat a few texts ('str', 'tuple[str, ...]') in 165 fields, and
    get_type_hints took ~6 ms of every `check` evaluating them one by one."""
    if not isinstance(annotation, str):
        return annotation
    key = (owner.__module__, annotation)
    if key not in _EVALUATED:
        _EVALUATED[key] = get_type_hints(type("_", (), {"__annotations__": {"t": annotation},
                                                         "__module__": owner.__module__}))["t"]
    return _EVALUATED[key]


@cache
def hints(cls: Any) -> dict[str, Any]:
    """The evaluated field types of a matrix class (annotations are strings under `from __future__`)."""
    out: dict[str, Any] = {}
    for f in fields(cls):
        owner = next(c for c in cls.__mro__ if f.name in c.__dict__.get("__annotations__", {}))
        out[f.name] = _evaluated(owner, f.type)
    return out


_DECODERS: dict[Any, tuple[dict[str, Decode | None], dict[str, str]]] = {}


def _decoders(cls: Any) -> tuple[dict[str, Decode | None], dict[str, str]]:
    """How to decode each field of `cls`, and the keys it accepts (names and aliases); built once per class."""
    got = _DECODERS.get(cls)
    if got is not None:
        return got
    types_ = hints(cls)
    decoders: dict[str, Decode | None] = {}
    keys: dict[str, str] = {}
    for f in fields(cls):
        decoders[f.name] = _decoder(types_[f.name])
        keys[f.name] = f.name
        if f.metadata.get("alias"):
            keys[f.metadata["alias"]] = f.name
    _DECODERS[cls] = decoders, keys
    return decoders, keys


def records() -> list[type[Record]]:
    """Every matrix class, by name."""
    out: list[type[Record]] = []
    todo = list(Record.__subclasses__())
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(out, key=lambda c: c.__qualname__)


@cache
def shape() -> str:
    """A digest of every matrix class's field names and types, plus FORMAT_VERSION: part of the cache key."""
    text = [f"format {FORMAT_VERSION}"]
    for cls in records():
        text.append(cls.__qualname__ + ":" + ",".join(f"{f.name}:{f.type}" for f in fields(cls)))  # type: ignore[arg-type]
    return hashlib.sha256("\n".join(text).encode()).hexdigest()[:16]

