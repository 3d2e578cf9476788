"""Symptom patterns are data: a catastrophic one is rejected by its parsed shape and never run by explain."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest

from envdoctor._drift.explain import explain
from envdoctor._drift.patterns import MAX_LINE, MAX_TEXT, bounded_text, pattern_problem
from envdoctor._drift.tolerant import unmarked_pattern
from envdoctor._matrix.loader import available, load_matrix
from envdoctor._matrix.model import SymptomRule
from envdoctor._render.explain import render_json

CATASTROPHIC = [
    pytest.param(r"^(a+)+$", "nested quantifiers", id="plus-plus"),
    pytest.param(r"(a*)*b", "empty string", id="star-star"),
    pytest.param(r"^(a|a)*$", "empty string", id="same-branch"),  # the parser factors it into a(?:|)
    pytest.param(r"^(a|aa)*$", "can both match 'a'", id="overlapping-branch"),
    pytest.param(r"(.*a){12}", "nested quantifiers", id="bounded-outer"),
    pytest.param(r"^(\w+\s?)*$", "nested quantifiers", id="words"),
    pytest.param(r"(a?)*$", "empty string", id="optional-inside"),
    pytest.param(r"(?:x+x+)+y", "nested quantifiers", id="non-capturing"),
    pytest.param(r"(", "not a regular expression", id="invalid"),
    pytest.param("a" * 3000, "characters long", id="huge"),
]
SAFE = [r"(?>a+)+", r"(a++)+", r"(ab)+", r"(a|b)*", r"(foo|bar)+baz", r"(a|ab)*c", r"x(ab|cd)*y", r"(\d{3})+",
        r"(?P<pkg>[\w.-]+) (?P<pkgver>\S+) requires torch==(?P<want>[\w.+]+)", r"a*b*c*", r"[^\d\s]+"]


@pytest.mark.parametrize(("pattern", "why"), CATASTROPHIC)
def test_catastrophic_shapes_are_rejected_with_why(pattern: str, why: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and why in problem


@pytest.mark.parametrize("pattern", SAFE)
def test_unambiguous_patterns_pass(pattern: str) -> None:
    assert pattern_problem(pattern) is None


def test_every_bundled_symptom_pattern_passes() -> None:
    checked = 0
    for entry in available():
        if entry.bundled:
            for rule in load_matrix(entry.path, use_cache=False).symptoms:
                assert pattern_problem(rule.pattern) is None, (entry.ref, rule.id)
                assert pattern_problem(unmarked_pattern(rule.pattern)) is None, (entry.ref, rule.id, "unmarked")
                checked += 1
    assert checked > 10


def test_explain_skips_a_catastrophic_pattern_with_a_warning_and_finishes_at_once() -> None:
    # Issue 15, finding 5: this pattern on 35 bytes ran until killed.
    drift = load_matrix("drift", use_cache=False)
    evil = SymptomRule(id="evil", pattern=r"^(a+)+$", cause="c", fix="f", reason="r", evidence=("e",))
    matrix = dataclasses.replace(drift, symptoms=(evil, *drift.symptoms))
    text = "a" * 34 + "!\nTypeError: SFTTrainer.__init__() got an unexpected keyword argument 'max_seq_length'"
    start = time.perf_counter()
    explanation = explain(text, matrix=matrix, inspect=False)
    assert time.perf_counter() - start < 2
    assert "evil" not in [d.id for d in explanation.diagnoses] and explanation.recognised
    assert explanation.skipped == (f"{matrix.ref} symptoms.evil: pattern skipped: "
                                   f"{pattern_problem(evil.pattern)}",)
    assert json.loads(render_json(explanation))["skipped"] == list(explanation.skipped)


def test_matching_is_bounded_in_length() -> None:
    long_line = "x" * (MAX_LINE * 3)
    text = bounded_text("head\n" + "y\n" * MAX_TEXT + long_line)
    assert len(text) <= MAX_TEXT and "head" not in text and text.endswith("x" * MAX_LINE)
    assert max(len(line) for line in text.split("\n")) == MAX_LINE
    assert re.search("yyy", bounded_text("yyy")) is not None


def test_the_markdown_tolerant_pattern_keeps_group_names_and_escapes() -> None:
    pattern = r"(?P<callable>\w+)\.__init__\(\) .* '(?P<key_word>evaluation_strategy)' (?P=key_word) \_x"
    assert unmarked_pattern(pattern) == r"(?P<callable>\w+)\.init\(\) .* '(?P<key_word>evaluationstrategy)' (?P=key_word) x"
    assert re.compile(unmarked_pattern(pattern))


def test_explain_on_a_whole_log_with_no_symptom_stays_fast() -> None:
    """The three views (pasted, unwrapped, unmarked) of a 256 KiB log, every bundled pattern: well under 2 s."""
    drift = load_matrix("drift", use_cache=False)
    text = ("step 10 loss=1.23 lr=2e-4 grad_norm=0.5 *** some_module_name\n" * 6000)[-MAX_TEXT:]
    start = time.perf_counter()
    assert not explain(text, matrix=drift, inspect=False).recognised
    assert time.perf_counter() - start < 2
