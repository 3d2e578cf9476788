"""The drift matrix's rename rules against the real transformers/TRL: the dev pair and an older pair in a venv."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from envdoctor._cli import main
from envdoctor._drift import rules
from envdoctor._matrix.loader import available, load_matrix
from envdoctor._matrix.model import RenameRule

DRIFT = load_matrix("drift", use_cache=False)
POOL_RULES = [r for r in DRIFT.renames if r.callable == "transformers.*.from_pretrained"]
CLASS_RULES = [r for r in DRIFT.renames if r not in POOL_RULES]
# What signatures_probe.py does not describe: TRL's DPO/Reward/KTO/GRPO classes, push_to_hub and datasets.load_dataset. A
# function's **kwargs that go to a builder config do not make it accept a keyword: its source must name it.
EXTRA_PROBE = """
import inspect, json, sys
sys.path.insert(0, sys.argv[2])
from signatures_probe import describe, main
import datasets, trl
from transformers.utils.hub import PushToHubMixin
from trl import DPOConfig, DPOTrainer, KTOTrainer, RewardConfig, RewardTrainer

def function(fn):
    params = inspect.signature(fn).parameters
    return {"params": sorted(n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)),
            "var_kw": False, "defaults": {}, "init_source": inspect.getsource(fn)}

out = main()
out["versions"]["datasets"] = datasets.__version__
try:  # GRPO came in TRL 0.14: the older pair has none
    from trl import GRPOConfig
    out["classes"]["trl.GRPOConfig"] = describe(GRPOConfig)
except ImportError:
    pass
out["classes"].update({"trl.DPOTrainer": describe(DPOTrainer), "trl.DPOConfig": describe(DPOConfig),
                       "trl.RewardTrainer": describe(RewardTrainer), "trl.KTOTrainer": describe(KTOTrainer), "trl.RewardConfig": describe(RewardConfig),
                       "transformers.*.push_to_hub": describe(PushToHubMixin) | function(PushToHubMixin.push_to_hub)
                       | {"var_kw": any(p.kind is p.VAR_KEYWORD
                                        for p in inspect.signature(PushToHubMixin.push_to_hub).parameters.values())},
                       "datasets.load_dataset": function(datasets.load_dataset)})
json.dump(out, open(sys.argv[1], "w", encoding="utf-8"))
"""


def _probe(python: str, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src"), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "WANDB_DISABLED": "true"}
    proc = subprocess.run([python, "-c", EXTRA_PROBE, str(out), str(Path(__file__).parent)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dev_probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the dev environment accepts, the extra classes included."""
    return _probe(sys.executable, tmp_path_factory.mktemp("sig") / "dev.json")


@pytest.fixture(scope="module")
def old_probe(old_pair_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What transformers 4.46.3 / trl 0.12.2 / datasets 3.2.0 accept, the extra classes included."""
    return _probe(old_pair_python, tmp_path_factory.mktemp("sig") / "old.json")


def test_every_rule_has_reason_and_evidence() -> None:
    for rule in [*DRIFT.renames, *DRIFT.symptoms]:
        assert rule.reason and rule.evidence, rule


def test_drift_has_no_packages_and_every_bundled_matrix_extends_it() -> None:
    assert DRIFT.packages == ()
    for entry in available():
        if entry.bundled and entry.name != "drift":
            assert load_matrix(entry.ref).chain[0].startswith("drift@"), entry.ref


def _accepts(info: dict[str, Any], name: str) -> bool:
    return name in info["params"] or info["var_kw"] or re.search(rf"['\"]{name}['\"]", info["init_source"]) is not None


def _judge(rule: RenameRule, probe: dict[str, Any]) -> list[str]:
    """Compare one rule with what the installed library really accepts; returns the disagreements."""
    v = Version(probe["versions"][rule.package])
    if rule.callable not in probe["classes"]:  # a class the older release does not have yet (GRPOConfig < 0.14)
        return []
    info = probe["classes"][rule.callable]
    wrong: list[str] = []
    if rule.kind == "default_changed":
        if rule.added is not None and v >= rule.added:
            default = info["defaults"].get(rule.old)
            if default is not None and default.strip("'\"") not in (rule.new_default or ""):
                wrong.append(f"{rule.old} default is {default}, rule says {rule.new_default}")
        return wrong
    old_ok = rule.removed is None or v < rule.removed
    if old_ok != _accepts(info, rule.old):
        wrong.append(f"{rule.callable}({rule.old}=) accepted={not old_ok} on {rule.package} {v}, rule says {old_ok}")
    if rule.kind == "rename" and rule.new:
        new_ok = rule.added is None or v >= rule.added
        if new_ok and rule.new not in info["params"]:
            wrong.append(f"{rule.callable}({rule.new}=) missing on {rule.package} {v}")
        if not new_ok and rule.new in info["params"] and rule.reversible:
            wrong.append(f"{rule.callable}({rule.new}=) present on {rule.package} {v} before `added`")
    if rule.kind == "moved" and (rule.added is None or v >= rule.added):
        there = rules.translate(DRIFT, rule.target or "", rule.new or "", {rule.package: v})
        final = rules.final_name(DRIFT, rule.target or "", rule.new or "", {rule.package: v}) or rule.new
        target = probe["classes"][rule.target]
        if there is not None and there.status == rules.NO_EQUIVALENT:
            if final in target["params"]:  # the target's rule says it dropped the keyword too
                wrong.append(f"{rule.target}({final}=) present on {rule.package} {v}, its rule says it is gone")
        elif final not in target["params"] and not target["var_kw"]:
            wrong.append(f"{rule.target}({final}=) missing on {rule.package} {v}")
    return wrong


def test_the_dev_probe_describes_every_class_a_rule_names(dev_probe: dict[str, Any]) -> None:
    assert {r.callable for r in CLASS_RULES} - set(dev_probe["classes"]) == set()


@pytest.mark.parametrize("rule", CLASS_RULES, ids=lambda r: f"{r.callable.split('.')[-1]}-{r.old}-{r.kind}")
def test_rule_matches_dev_environment(rule: RenameRule, dev_probe: dict[str, Any]) -> None:
    assert _judge(rule, dev_probe) == []


@pytest.mark.slow
def test_rules_match_older_pair_in_a_real_venv(old_probe: dict[str, Any]) -> None:
    assert old_probe["versions"] == {"transformers": "4.46.3", "trl": "0.12.2", "datasets": "3.2.0"}
    wrong = [w for rule in CLASS_RULES for w in _judge(rule, old_probe)]
    assert wrong == []


def _from_pretrained_reads(source: str) -> set[str]:
    """Keyword names from_pretrained reads: its parameters and every kwargs.pop("name", ...)."""
    tree = ast.parse("class _X:\n" + "\n".join("    " + line for line in source.splitlines()))
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    names = {a.arg for a in [*fn.args.args, *fn.args.kwonlyargs]}
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("pop", "get") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            names.add(node.args[0].value)
        # `for name in ["mirror", "low_cpu_mem_usage", ...]: _ = kwargs.pop(name, None)` (5.x drops them silently)
        if isinstance(node, ast.For) and isinstance(node.iter, ast.List | ast.Tuple) and any(
                isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "pop"
                for b in node.body for n in ast.walk(b)):
            names.update(e.value for e in node.iter.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return names


@pytest.mark.parametrize("which", ["new", pytest.param("old", marks=pytest.mark.slow)])
def test_from_pretrained_rules_match_the_source(which: str, request: pytest.FixtureRequest) -> None:
    probe = request.getfixturevalue(f"{which}_signatures")
    reads = _from_pretrained_reads(probe["from_pretrained_source"])
    v = Version(probe["versions"]["transformers"])
    for rule in POOL_RULES:
        old_ok = rule.removed is None or v < rule.removed
        assert (rule.old in reads) == old_ok, (rule.old, str(v))
        if rule.kind == "rename" and (rule.added is None or v >= rule.added):
            assert rule.new in reads, (rule.new, str(v))
        if rule.kind == "moved":
            assert rule.new in probe["classes"][rule.target]["params"]


@pytest.mark.slow
def test_lint_fixed_for_old_pins_runs_on_the_old_pair(tmp_path: Path, old_pair_python: str) -> None:
    """New-style code, linted with --fix against transformers 4.46.3 / trl 0.12.2 pins, runs in that venv."""
    matrix = tmp_path / "old.toml"
    matrix.write_text('schema_version = 1\nname = "old"\nversion = "1.0"\nextends = "drift"\n'
                      '[[packages]]\nname = "transformers"\nspecifier = "==4.46.3"\nreason = "r"\nevidence = ["e"]\n'
                      '[[packages]]\nname = "trl"\nspecifier = "==0.12.2"\nreason = "r"\nevidence = ["e"]\n',
                      encoding="utf-8")
    script = tmp_path / "s.py"
    script.write_text("from trl import SFTConfig\n"
                      "cfg = SFTConfig(output_dir='o', max_length=77, use_cpu=True)\n"
                      "assert cfg.max_seq_length == 77\n", encoding="utf-8")
    assert main(["lint", "--matrix", str(matrix), "--fix", str(script)]) == 0
    proc = subprocess.run([old_pair_python, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
