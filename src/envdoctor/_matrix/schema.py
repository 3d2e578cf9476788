"""The matrix file format as pydantic v2 models, derived from the dataclasses of `model.py` (never written twice).

Imported only when a matrix is (re)validated and by `matrix schema`: the warm path loads the compiled cache.
Every model forbids unknown keys and is frozen; packaging types are strings that must parse; each field's
help text, constraints, alias and check come from its `doc()`; each class's `invariants` become one
after-validator, with the value rules of `checks.py` (names, labels, indexes, patterns) beside them. Values
are strict: a boolean is `true`/`false`, never "yes" or 1; a number is a number, never a string; no inf or nan.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Annotated, Any, Union, get_args, get_origin

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from .checks import FIELD_CHECKS, MATRIX_CHECKS, MAX_INT
from .model import Matrix as _Matrix
from .record import Record, hints, optional_arms, plain

SCHEMA_VERSION = 1


def _first_line(e: Exception) -> str:
    """packaging's message without the echoed text and caret lines under it: a problem is one line."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _parses(kind: Callable[[str], object], error: type[ValueError], what: str, *,
            detail: bool) -> Callable[[str], str]:
    """A validator that keeps the string but requires it to parse as `kind`; `detail` adds packaging's own words."""
    def check(value: str) -> str:
        try:
            kind(value)
        except error as e:
            raise ValueError(f"invalid {what} {value!r}" + (f": {_first_line(e)}" if detail else "")) from e
        return value

    return check


# What a packaging type is on disk: a string that must parse.
_TEXT: dict[type, Callable[[str], str]] = {
    SpecifierSet: _parses(SpecifierSet, InvalidSpecifier, "version specifier", detail=False),
    Requirement: _parses(Requirement, InvalidRequirement, "requirement", detail=True),
    Version: _parses(Version, InvalidVersion, "version", detail=False),
    Marker: _parses(Marker, InvalidMarker, "marker", detail=True),
}
# strict: TOML has real booleans and numbers, so "yes" for a bool or "3" for an int is a mistake to report.
_CONFIG = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True, allow_inf_nan=False)


def _int(value: int) -> int:
    if abs(value) > MAX_INT:
        raise ValueError(f"integer out of range (at most {MAX_INT})")
    return value


# A validator, not Field(ge=, le=): a field's own constraints (tier le=3) must stay its own.
_INT = Annotated[int, AfterValidator(_int)]


def _file_type(tp: Any) -> Any:
    """The type a field has in the file for its type in the compiled form."""
    inner, nullable = optional_arms(tp)
    if nullable:
        return _file_type(inner) | None
    origin = get_origin(inner)
    if origin is tuple:
        return list[_file_type(get_args(inner)[0])]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        return Union[tuple(_file_type(a) for a in get_args(inner))]  # noqa: UP007 - built from a tuple
    if isinstance(inner, type) and issubclass(inner, Record):
        return model_for(inner)
    if inner in _TEXT:
        return Annotated[str, AfterValidator(_TEXT[inner])]
    if inner is int:
        return _INT
    return inner


def _checker(checks: tuple[Callable[[Any], None], ...]) -> Any:
    def validate(cls: Any, value: Any) -> Any:
        if value is not None:
            for check in checks:
                check(value)
        return value

    return validate


def _invariants(checks: tuple[Callable[[Any], str | None], ...]) -> Any:
    def validate(self: Any) -> Any:
        for check in checks:
            problem = check(self)
            if problem:
                raise ValueError(problem)
        return self

    return validate


_MODELS: dict[Any, type[BaseModel]] = {}


def model_for(cls: Any) -> type[BaseModel]:
    """The pydantic model of one matrix class, as the file holds it (compiled-only fields left out)."""
    if cls in _MODELS:
        return _MODELS[cls]
    types_ = hints(cls)
    definitions: dict[str, Any] = {}
    validators: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        meta = f.metadata
        if meta.get("compiled"):
            continue
        kw: dict[str, Any] = dict(description=meta["doc"], **meta["constraints"])
        if meta["alias"]:
            kw["alias"] = meta["alias"]
        if meta["required"] or (f.default is MISSING and f.default_factory is MISSING):
            info = Field(..., **kw)
        elif f.default_factory is not MISSING:
            value = plain(f.default_factory())
            # an immutable default (SpecifierSet() is '') is shown in the schema; a container is made per model
            info = Field(value, **kw) if isinstance(value, str) else \
                Field(default_factory=lambda factory=f.default_factory: plain(factory()), **kw)
        else:
            info = Field(plain(f.default), **kw)
        definitions[f.name] = (_file_type(types_[f.name]), info)
        checks = ((meta["check"],) if meta["check"] is not None else ()) + FIELD_CHECKS.get((cls, f.name), ())
        if checks:
            validators[f"_check_{f.name}"] = field_validator(f.name)(_checker(checks))
    invariants = tuple(cls.invariants) + MATRIX_CHECKS.get(cls, ())
    if invariants:
        validators["_invariants"] = model_validator(mode="after")(_invariants(invariants))
    model = create_model(cls.__name__, __config__=_CONFIG, __doc__=cls.__doc__, __validators__=validators,
                         **definitions)
    _MODELS[cls] = model
    return model


def matrix_model() -> type[BaseModel]:
    """The pydantic model of a matrix file."""
    return model_for(_Matrix)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the matrix format, for editors."""
    return matrix_model().model_json_schema(by_alias=True)


__all__ = ["SCHEMA_VERSION", "json_schema", "matrix_model", "model_for"]
