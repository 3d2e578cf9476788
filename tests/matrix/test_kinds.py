"""The registry of rule kinds: read off the matrix classes, it drives merging, show, diff and the evidence check."""

from __future__ import annotations

from dataclasses import fields

from envdoctor._matrix.kinds import BY_SECTION, KINDS, every_rule
from envdoctor._matrix.loader import load_matrix
from envdoctor._matrix.model import GpuRules, Matrix
from envdoctor._matrix.validate import merge

R = 'reason = "r"\nevidence = ["e"]\n'


def test_every_section_field_is_a_kind_in_file_order() -> None:
    sections: list[str] = []
    for f in fields(Matrix):
        if "kind" in f.metadata:
            sections.append(f.name)
        elif f.name == "gpu":  # the group's kinds sit where the group is
            sections += [f"gpu.{g.name}" for g in fields(GpuRules)]
    assert [k.section for k in KINDS] == sections
    assert {"python", "packages", "gpu.workloads", "renames", "probes"} <= set(sections)
    assert BY_SECTION["gpu.bf16"].many is False and BY_SECTION["known_bad"].key == ("name", "specifier", "with_")
    assert not BY_SECTION["probes"].evidence and BY_SECTION["packages"].evidence


def test_every_rule_yields_each_rule_with_its_place_and_evidence(write_matrix) -> None:  # type: ignore[no-untyped-def]
    m = load_matrix(str(write_matrix(
        f'[python]\nspecifier = ">=3.10"\n{R}[[packages]]\nname = "torch"\nreason = "r"\n'
        f'[[gpu.workloads]]\nname = "w"\nmin_vram_gib = 8\n{R}[gpu.bf16]\nreason = "r"\n'
        '[[probes]]\nname = "imports"\ntier = 1\n')))
    placed = [(p.place, p.evidence, p.kind.evidence) for p in every_rule(m)]
    assert placed == [("python", ("e",), True), ("packages[torch]", (), True), ("gpu.bf16", (), True),
                      ("gpu.workloads[w]", ("e",), True), ("probes[imports]", (), False)]


def test_merge_follows_the_registry_for_lists_tables_and_groups() -> None:
    parent = {"name": "p", "packages": [{"name": "Torch", "specifier": "<2"}, {"name": "trl"}],
              "gpu": {"cuda": {"reason": "c"}, "workloads": [{"name": "a", "min_vram_gib": 1}]},
              "python": {"specifier": ">=3.9"}}
    child = {"name": "c", "packages": [{"name": "torch", "specifier": ">=2"}],
             "gpu": {"bf16": {"reason": "b"}, "workloads": [{"name": "b", "min_vram_gib": 2}]}}
    out = merge(parent, child)
    assert out["name"] == "c" and out["python"] == {"specifier": ">=3.9"}
    assert out["packages"] == [{"name": "torch", "specifier": ">=2"}, {"name": "trl"}]  # matched by canonical name
    assert set(out["gpu"]) == {"cuda", "bf16", "workloads"}
    assert [w["name"] for w in out["gpu"]["workloads"]] == ["a", "b"]
    assert parent["gpu"] == {"cuda": {"reason": "c"}, "workloads": [{"name": "a", "min_vram_gib": 1}]}  # untouched
