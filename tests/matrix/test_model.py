"""The compiled matrix: one definition per class, a dict round trip that refuses keys it does not know."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from envdoctor._matrix.loader import available, load_matrix
from envdoctor._matrix.model import KnownBadRule, Matrix
from envdoctor._matrix.record import records, shape
from envdoctor.errors import MatrixError


@pytest.mark.parametrize("ref", [e.ref for e in available() if e.bundled])
def test_round_trip_through_plain_dicts(ref: str) -> None:
    m = load_matrix(ref, use_cache=False)
    assert Matrix.from_dict(m.to_dict()) == m


def test_strings_become_packaging_objects_by_field_type() -> None:
    bad = KnownBadRule.from_dict({"name": "t", "specifier": "==0.21.0", "reason": "r", "with": "transformers==4.46.3"})
    assert isinstance(bad.specifier, SpecifierSet) and isinstance(bad.with_, Requirement)
    assert KnownBadRule.from_dict(bad.to_dict()) == bad  # written back by field name, `with_`


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"name": "x", "version": "1", "colour": "red"}, id="top-level"),
        pytest.param({"name": "x", "version": "1", "packages": [{"name": "a", "reason": "r", "pin": "1"}]}, id="rule"),
        pytest.param({"name": "x", "version": "1", "gpu": {"bf16": {"reason": "r", "min_cc": 8}}}, id="group"),
    ],
)
def test_from_dict_refuses_unknown_keys(data: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(MatrixError, match="unknown key"):
        Matrix.from_dict(data)


def test_literal_vocabularies_are_typed() -> None:
    from typing import get_args

    from envdoctor._matrix.model import MatrixStatus, RenameKind

    assert set(get_args(MatrixStatus)) == {"current", "history", "broken", "fragment"}
    assert set(get_args(RenameKind)) == {"rename", "moved", "removed", "default_changed"}


def test_shape_names_every_class_and_changes_with_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    from envdoctor._matrix import record

    assert {c.__name__ for c in records()} >= {"Matrix", "PackageRule", "GpuRules", "ProbeRef"}
    before = shape()
    shape.cache_clear()
    monkeypatch.setattr(record, "FORMAT_VERSION", record.FORMAT_VERSION + 1)
    try:
        assert shape() != before
    finally:
        shape.cache_clear()


def test_records_compare_hash_and_print_by_their_fields_as_dataclasses_would() -> None:
    # Record defines __eq__/__hash__/__repr__ once; every matrix class opts out of the generated ones
    data = {"name": "t", "specifier": "==0.21.0", "reason": "r", "with": "transformers==4.46.3"}
    a, b = KnownBadRule.from_dict(data), KnownBadRule.from_dict(data)
    c = KnownBadRule.from_dict({**data, "reason": "other"})
    assert a == b and hash(a) == hash(b) and len({a, b, c}) == 2
    assert a != c and a != data and (a == data) is False
    assert repr(a).startswith("KnownBadRule(name='t', specifier=<SpecifierSet('==0.21.0')>")
    from dataclasses import fields

    for cls in records():
        assert "__eq__" not in vars(cls) and "__repr__" not in vars(cls), cls  # none generated again
        assert [f.name for f in fields(cls)]  # still dataclasses
