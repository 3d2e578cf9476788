"""`lint --fix` accounts for every stale issue (fixed, or NOT FIXED with why), on the whole lint corpus and on the
shapes it may delete (`drop = true` rules), dict keys and re-declared dataclass fields."""

from __future__ import annotations

import ast
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from envdoctor._lint import source
from envdoctor._matrix.model import RenameRule

from .conftest import Lint

CORPUS = Path(__file__).parent / "corpus"
Where = tuple[str, int | None, int, int, str]


def _where(i: dict[str, object]) -> Where:
    return (str(i["path"]), i["cell"], int(str(i["line"])), int(str(i["col"])), str(i["keyword"]))  # type: ignore[arg-type]


def _json(lint: Lint, *argv: str) -> dict[str, list[dict[str, object]]]:
    _, out, _ = lint("--format", "json", *argv)
    data: dict[str, list[dict[str, object]]] = json.loads(out)
    return data


def _stale(data: dict[str, list[dict[str, object]]]) -> list[dict[str, object]]:
    return [i for i in data["issues"] if i["severity"] in ("error", "warning")]


def test_fix_accounts_for_every_stale_issue_of_the_corpus(tmp_path: Path, lint: Lint) -> None:
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy, ignore=shutil.ignore_patterns("expected.toml"))
    data = _json(lint, "--fix", str(copy))
    stale = [_where(i) for i in _stale(data)]
    fixed = [_where(i) for i in data["fixed"] if i["via"] != "--fix"]
    unfixed = [_where(i) for i in data["unfixed"]]
    assert len(set(stale)) == len(stale)
    assert Counter(fixed + unfixed) == Counter(stale), "an issue is neither fixed nor NOT FIXED, or is both"
    assert all(i["why"] for i in data["unfixed"])
    why = Counter(str(i["why"]).split(":")[0].split(";")[0] for i in data["unfixed"])
    # what --fix wrote still parses, and linting it again finds only what was left NOT FIXED
    for path in sorted(copy.iterdir()):
        if path.suffix == ".py":
            ast.parse(path.read_text(encoding="utf-8"))
        elif path.suffix == ".ipynb":
            for unit in source.units(path):
                ast.parse(unit.code)
    again = _json(lint, str(copy))
    left = Counter(str(i["keyword"]) for i in _stale(again))
    assert left == Counter(k for *_, k in unfixed)
    print(f"\nlint --fix on the corpus copy: {len(stale)} stale, fixed {len(fixed)} "
          f"({100 * len(fixed) / len(stale):.1f} %), left {len(unfixed)}: {dict(why)}")


DICTS = '''\
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

kw = {"torch_dtype": "auto", "low_cpu_mem_usage": True}
kw["use_flash_attention_2"] = True
kw["torch_dtype"] = "auto"
model = AutoModelForCausalLM.from_pretrained("m", **kw)
extra = {"packing": True}
more = dict(max_seq_length=512)
cfg = SFTConfig(output_dir="o", model_init_kwargs={"torch_dtype": "auto", "low_cpu_mem_usage": True})
trainer = SFTTrainer(model=model, args=cfg, dataset_batch_size=8, **extra)
other = SFTTrainer(model=model, args=cfg, **more)
model.push_to_hub("r", use_temp_dir=False)
'''


def test_fix_renames_and_deletes_dict_keys_and_drops_keywords(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    path.write_text(DICTS, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1
    new = path.read_text(encoding="utf-8")
    assert 'kw = {"dtype": "auto"}\n' in new  # renamed key, dropped key (its comma too)
    assert 'kw["dtype"] = "auto"\n' in new
    assert 'model_init_kwargs={"dtype": "auto"})' in new
    assert "SFTTrainer(model=model, args=cfg, **extra)" in new  # dataset_batch_size: SFTConfig dropped it too
    assert 'model.push_to_hub("r")\n' in new
    assert f"fixed    {path}:4:30: low_cpu_mem_usage (removed)" in out
    assert f"note     {path}:4:30: `low_cpu_mem_usage` deleted from from_pretrained(...): From transformers 5.0.0" in out
    assert f"note     {path}:13:24: `use_temp_dir` deleted from push_to_hub(...)" in out
    assert "SFTConfig(dataset_batch_size=) warned 'will be removed in version 0.18.0'" in out  # the reason it may go
    # no equivalent and no drop: left, with the rule's advice
    assert f"NOT FIXED {path}:5:4: use_flash_attention_2: no equivalent: " in out
    # a moved key of a dict reaching the trainer through ** is not the call's: left, never put into dict(...)
    assert (f"NOT FIXED {path}:8:10: packing: it reaches SFTTrainer through **extra, not written in the call: move it "
            "into args=SFTConfig(..., packing=...) by hand") in out
    assert f"NOT FIXED {path}:9:13: max_seq_length: it reaches SFTTrainer through **more" in out
    assert "more = dict(max_seq_length=512)\n" in new and new.count("SFTConfig(") == 1
    assert "fixed 7, left 3" in out


def test_redeclared_fields_are_left_with_why(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    src = ("from dataclasses import dataclass, field\nfrom transformers import TrainingArguments\n\n@dataclass\n"
           "class Args(TrainingArguments):\n    overwrite_output_dir: bool = field(default=True)\n"
           "    evaluate_during_training: bool = False\n")
    path.write_text(src, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1 and path.read_text(encoding="utf-8") == src  # drop = true is for keywords, not a class's field
    assert (f"NOT FIXED {path}:6:5: overwrite_output_dir: a field the subclass re-declares: renaming or deleting it "
            "changes the class's attribute and its command-line flag (HfArgumentParser)") in out
    assert f"NOT FIXED {path}:7:5: evaluate_during_training: a field the subclass re-declares" in out
    assert "fixed 0, left 2" in out


def test_drop_is_only_for_removed_keywords() -> None:
    fields = dict(package="transformers", callable="transformers.TrainingArguments", old="x", reason="r",
                  evidence=("transformers==5.0.0:transformers/training_args.py !\"x\"",))
    assert RenameRule(**fields, kind="removed", drop=True).drop  # type: ignore[arg-type]
    problems = [check(RenameRule(**fields, kind="rename", new="y", drop=True))  # type: ignore[arg-type]
                for check in RenameRule.invariants]
    assert "`drop` on 'x' needs kind 'removed'" in problems


@pytest.mark.parametrize("keyword", ["low_cpu_mem_usage", "use_temp_dir", "overwrite_output_dir", "use_mps_device",
                                     "dataset_batch_size"])
def test_the_drift_matrix_drops_only_what_its_evidence_shows(keyword: str) -> None:
    from envdoctor._matrix.loader import load_matrix

    rules = [r for r in load_matrix("drift").renames if r.old == keyword and r.kind == "removed"]
    assert rules and all(r.drop and len(r.evidence) >= 2 for r in rules)


def test_a_removed_boolean_becomes_what_its_value_means_now(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    path.write_text(
        "from transformers import AutoModelForCausalLM, TrainingArguments\n\n"
        'model = AutoModelForCausalLM.from_pretrained("m", use_flash_attention_2=True)\n'
        'm2 = AutoModelForCausalLM.from_pretrained("m", **dict(use_flash_attention_2=flags.flash))\n'
        'a = TrainingArguments(output_dir="o", group_by_length=group_by_length)\n'
        'b = TrainingArguments(output_dir="o", group_by_length=False, train_sampling_strategy="random")\n'
        'kw = {"use_flash_attention_2": False}\n'
        'm3 = AutoModelForCausalLM.from_pretrained("m", **kw)\n', encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    new = path.read_text(encoding="utf-8")
    assert code == 1
    assert "from_pretrained(\"m\", attn_implementation='flash_attention_2')\n" in new
    assert "**dict(attn_implementation=('flash_attention_2' if flags.flash else None)))\n" in new
    assert "train_sampling_strategy=('group_by_length' if group_by_length else 'random'))\n" in new
    assert f"fixed    {path}:3:51: use_flash_attention_2 -> attn_implementation" in out
    assert (f"note     {path}:5:39: group_by_length=group_by_length -> train_sampling_strategy=('group_by_length' if "
            "group_by_length else 'random'): group_by_length=True is gone in transformers 5.2.0") in out
    assert (f"NOT FIXED {path}:6:39: group_by_length: both `group_by_length` and `train_sampling_strategy` are given; "
            "keep `train_sampling_strategy`") in out
    assert 'kw = {"attn_implementation": None}\n' in new  # a dict key: the key (its quotes) and the value
    assert "fixed 4, left 1" in out


@pytest.mark.parametrize(("true_means", "false_means", "problem"), [
    pytest.param("a='x'", None, "go together", id="one-without-the-other"),
    pytest.param("a='x'", "b=None", "name one keyword", id="two-keywords"),
    pytest.param("a=x", "a=None", "Python literal", id="not-a-literal"),
])
def test_true_means_and_false_means_are_checked(true_means: str, false_means: str | None, problem: str) -> None:
    rule = RenameRule(package="transformers", callable="transformers.TrainingArguments", old="x", reason="r",
                      kind="removed", true_means=true_means, false_means=false_means)
    assert any(problem in (check(rule) or "") for check in RenameRule.invariants)


def test_an_issue_in_a_cell_that_cannot_be_rewritten_is_still_listed(tmp_path: Path) -> None:
    from envdoctor._lint.engine import Issue
    from envdoctor._lint.fix import fix_files
    from envdoctor._matrix.loader import load_matrix

    nb = tmp_path / "n.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["def (:\n"], "metadata": {}, "outputs": [],
                                         "execution_count": None}], "metadata": {}, "nbformat": 4,
                              "nbformat_minor": 5}), encoding="utf-8")
    issue = Issue(str(nb), 1, 1, 0, "transformers.TrainingArguments", "evaluation_strategy", "error", "removed", "m",
                  "eval_strategy")
    fixed, unfixed, changed = fix_files([nb], [issue], load_matrix("drift"))
    assert (fixed, changed) == ([], [])
    assert unfixed == [(issue, "its cell or file could not be rewritten; edit it by hand")]
