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


def test_every_value_rule_guards_a_field_that_exists() -> None:
    # a rule keyed by a field that was renamed or removed would silently guard nothing
    from dataclasses import fields

    from envdoctor._matrix.checks import FIELD_CHECKS, MATRIX_CHECKS
    from envdoctor._matrix.record import Record

    missing = [f"{cls.__name__}.{name}" for cls, name in FIELD_CHECKS if name not in {f.name for f in fields(cls)}]
    assert missing == []
    assert all(issubclass(cls, Record) for cls in MATRIX_CHECKS)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        pytest.param("dist_name", ["torch", "Flash_Attn", "a.b-c", "x", "bitsandbytes", "0x"],
                     ["--index-url=x", "-e", "a b", "a;b", "$(id)", "tørch", "", "a.", "_a", "a>=1"], id="pep508-names"),
        pytest.param("local_label", ["cu118", "rocm6.2", "cpu", "cu121_sm90", "a-b"],
                     ["+cu118", "cu 118", "cu118;id", "", ".cu", "cu..1"], id="pep440-local-labels"),
        pytest.param("index_ref", ["pytorch:cu118", "pytorch:cpu", "pytorch:rocm6.2", "https://download.pytorch.org/whl/cu118",
                                   "http://localhost:8080/simple", "file:///srv/wheels"],
                     ["cu118", "pytorch:cuda11", "ftp://x/simple", "https://", "https://x/simple --trusted-host x",
                      "javascript:alert(1)", "file:wheels", "https://[x", ""], id="index-refs"),
        pytest.param("direct_source", ["git+https://github.com/axolotl-ai-cloud/axolotl@v0.4.0", "https://h/p-1.0-py3-none-any.whl",
                                       "file:///srv/p.tar.gz", "git+ssh://git@github.com/x/y"],
                     ["not a url", "javascript:alert(1)", "ftp://h/p.tar.gz", "git+https://h/x y", "x; rm",
                      "https://[x/p.whl"], id="sources"),
    ],
)
def test_the_value_rules(check: str, good: list[str], bad: list[str]) -> None:
    from envdoctor._matrix import checks

    fn = getattr(checks, check)
    for value in good:
        fn(value)
    refused = []
    for value in bad:
        with pytest.raises(ValueError) as e:
            fn(value)
        refused.append(str(e.value))
    assert all("\n" not in r for r in refused)


def test_depth_is_measured_without_recursion() -> None:
    from envdoctor._matrix.checks import MAX_DEPTH, depth_problem

    deep: dict = {}  # type: ignore[type-arg]
    node = deep
    for _ in range(100_000):  # far past Python's recursion limit
        node["a"] = {}
        node = node["a"]
    where, message = depth_problem(deep)  # type: ignore[misc]
    assert where.startswith("a.a.") and f"deeper than {MAX_DEPTH}" in message
    assert depth_problem({"probes": [{"params": {"a": {"b": [1, 2.5, True]}}}]}) is None
    assert depth_problem({"x": 2**64}) == ("x", "integer out of range (at most 9223372036854775807)")


def test_booleans_and_numbers_are_strict(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix(f'[[packages]]\nname = "a"\nno_deps = "yes"\noptional = 1\n{R}'
                        f'[[gpu.workloads]]\nname = "w"\nmin_vram_gib = 24\n{R}')  # an integer is a fine float
    with pytest.raises(MatrixError) as e:
        load_matrix(str(path))
    assert [p.split(": ", 1)[1] for p in e.value.problems] == [
        "packages[0].no_deps: Input should be a valid boolean",
        "packages[0].optional: Input should be a valid boolean",
    ]
