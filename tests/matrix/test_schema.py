"""The file format, derived from the dataclasses: every property documented, cross-field rules with their texts."""

from __future__ import annotations

import pytest

from envdoctor._matrix.loader import load_matrix
from envdoctor._matrix.schema import json_schema, matrix_model
from envdoctor.errors import MatrixError

R = 'reason = "r"\nevidence = ["e"]\n'


def test_every_property_has_a_description() -> None:
    schema = json_schema()
    tables = {"Matrix": schema, **schema["$defs"]}
    undocumented = [f"{t}.{k}" for t, d in tables.items() for k, v in d["properties"].items() if not v.get("description")]
    assert undocumented == []
    assert all(d["additionalProperties"] is False for d in tables.values())
    assert "matrix_status" not in schema["properties"] and "source" not in schema["properties"]  # compiled only


def test_the_models_are_frozen_and_take_with_by_alias_or_name() -> None:
    from envdoctor._matrix.model import KnownBadRule
    from envdoctor._matrix.schema import model_for

    model = model_for(KnownBadRule)
    a = model.model_validate({"name": "t", "specifier": "==1", "reason": "r", "with": "x<2"})
    b = model.model_validate({"name": "t", "specifier": "==1", "reason": "r", "with_": "x<2"})
    assert a == b and a.model_dump()["with_"] == "x<2"
    with pytest.raises(Exception, match="frozen"):
        a.name = "u"  # type: ignore[misc]
    assert matrix_model().model_config["extra"] == "forbid"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        pytest.param(f'[[renames]]\npackage = "p"\ncallable = "p.f"\nold = "a"\n{R}', "rename of 'a' (rename) needs `new`",
                     id="rename-needs-new"),
        pytest.param(f'[[renames]]\npackage = "p"\ncallable = "p.f"\nold = "a"\nnew = "b"\nkind = "moved"\n{R}',
                     "moved keyword 'a' needs `target` and `via`", id="moved-needs-target"),
        pytest.param(f'[[packages]]\nname = "Torch"\n{R}[[packages]]\nname = "torch"\n{R}', "package 'torch' is listed twice",
                     id="unique-packages"),
        pytest.param(f'[[symptoms]]\nid = "s"\npattern = "(unclosed"\ncause = "c"\nfix = "f"\n{R}', "invalid regular expression",
                     id="regex-compiles"),
        pytest.param('[[probes]]\nname = "p"\ntier = 4\n', "probes[0].tier: Input should be less than or equal to 3",
                     id="tier-le"),
        pytest.param(f'[[gpu.workloads]]\nname = "w"\nmin_vram_gib = 0\n{R}', "gpu.workloads[0].min_vram_gib: Input should be greater than 0",
                     id="vram-gt"),
        pytest.param(f'[[renames]]\npackage = "p"\ncallable = "p.f"\nold = "a"\nnew = "b"\nkind = "renamed"\n{R}',
                     "renames[0].kind: Input should be 'rename', 'moved', 'removed' or 'default_changed'", id="kind-literal"),
        pytest.param('[[packages]]\nname = "a"\nreason = ""\n', "packages[0].reason: String should have at least 1 character",
                     id="reason-not-empty"),
        pytest.param(f'[[known_bad]]\nname = "a"\nspecifier = "==1"\nwith = "b >>= 2"\n{R}', "known_bad[0].with: invalid requirement",
                     id="with-alias-requirement"),
    ],
)
def test_cross_field_and_constraint_rules(write_matrix, body: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MatrixError) as e:
        load_matrix(str(write_matrix(body)))
    assert needle in str(e.value), str(e.value)


def test_matrix_name_and_version_are_checked(write_matrix) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MatrixError) as e:
        load_matrix(str(write_matrix("", name="Bad Name", version="not-a-version")))
    text = str(e.value)
    assert "matrix name 'Bad Name' must be lower-case" in text and "invalid version 'not-a-version'" in text
