"""explain on what users really paste: the corpus of public issue threads names the expected cause for >= 90 %."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.utils import canonicalize_name
from packaging.version import Version

from envdoctor._drift.explain import explain
from envdoctor._env.environment import Distribution, Environment
from envdoctor._env.gpu import GpuInfo
from envdoctor._matrix.loader import load_matrix

CORPUS = Path(__file__).parent / "corpus" / "errors"
SETS = ("errors", "heldout")  # heldout.toml: collected after the patterns were written for errors.toml
DRIFT = load_matrix("drift", use_cache=False)
# The environment the corpus is judged in: today's releases, no GPU (as in CI). The expected ids do not
# depend on it; whether the environment has the cause does, and is tested in test_explain.py.
HERE = Environment(
    executable=sys.executable, prefix="", python_version=Version("3.11.7"), markers={},
    distributions={canonicalize_name(n): Distribution(n, Version(v), v) for n, v in {
        "transformers": "5.23.0", "trl": "1.16.0", "peft": "0.18.0", "torch": "2.13.0",
        "bitsandbytes": "0.50.2"}.items()},
    gpu=GpuInfo(False, reason="NVML not found"))


def _corpus() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for name in SETS:
        for item in tomllib.loads((CORPUS / f"{name}.toml").read_text(encoding="utf-8"))["error"]:
            items.append({**item, "set": name})
    return items


ITEMS = _corpus()


def _named(item: dict[str, Any]) -> tuple[bool, str]:
    """Whether explain names the expected cause (and every word of `names` in it), and what it named."""
    result = explain(item["text"], matrix=DRIFT, environment=HERE)
    ids = [d.id for d in result.diagnoses]
    hit = next((d for d in result.diagnoses if d.id == item["expect"]), None)
    if hit is None:
        return False, f"named {ids or 'nothing'}"
    told = f"{hit.cause} {hit.fix}"
    missing = [w for w in item.get("names", []) if w not in told]
    return (not missing), (f"cause lacks {missing}: {hit.cause}" if missing else "ok")


def test_the_corpus_is_large_and_cited() -> None:
    assert len(ITEMS) >= 30
    assert len({i["name"] for i in ITEMS}) == len(ITEMS)
    for item in ITEMS:
        assert item["source"].startswith("https://github.com/"), item["name"]
        assert item["text"].strip() and item["expect"], item["name"]
    known = {s.id for s in DRIFT.symptoms} | {"unknown-model-type"}
    assert {i["expect"] for i in ITEMS} <= known


def test_explain_names_the_right_cause_for_at_least_90_percent(capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = [(item["set"], item["name"], *_named(item)) for item in ITEMS]
    right = sum(ok for *_, ok, _ in verdicts)
    share = right / len(verdicts)
    with capsys.disabled():
        for name in SETS:
            mine = [ok for s, _, ok, _ in verdicts if s == name]
            print(f"\nexplain corpus {name}: {sum(mine)}/{len(mine)} name the right cause ({sum(mine) / len(mine):.1%})")
        print(f"explain corpus: {right}/{len(verdicts)} errors name the right cause ({share:.1%})")
        for _, name, ok, why in verdicts:
            if not ok:
                print(f"  missed {name}: {why}")
    assert share >= 0.90, [v for v in verdicts if not v[2]]
