"""The drift interpreter that lint, explain and compat share: what one keyword becomes for given versions."""

from __future__ import annotations

import pytest
from packaging.version import Version

from envdoctor._drift import rules
from envdoctor._matrix.loader import load_matrix

DRIFT = load_matrix("drift", use_cache=False)


V = Version


@pytest.mark.parametrize(
    ("callable_", "keyword", "versions", "expected"),
    [
        pytest.param("transformers.TrainingArguments", "evaluation_strategy", {"transformers": V("4.40.2")}, None,
                     id="old-name-before-rename-is-fine"),
        pytest.param("transformers.TrainingArguments", "eval_strategy", {"transformers": V("4.40.2")},
                     ("too_new", "evaluation_strategy"), id="new-name-on-old-library"),
        pytest.param("transformers.TrainingArguments", "evaluation_strategy", {"transformers": V("4.50.3")},
                     ("deprecated", "eval_strategy"), id="deprecated-window"),
        pytest.param("transformers.TrainingArguments", "evaluation_strategy", {"transformers": V("4.51.0")},
                     ("removed", "eval_strategy"), id="removed"),
        pytest.param("trl.SFTConfig", "evaluation_strategy", {"transformers": V("5.23.0")},
                     ("removed", "eval_strategy"), id="sftconfig-inherits-trainingarguments"),
        pytest.param("trl.SFTTrainer", "max_seq_length", {"trl": V("0.8.6")}, None, id="trl-0.8.6-has-no-sftconfig"),
        pytest.param("trl.SFTTrainer", "max_seq_length", {"trl": V("0.13.0")}, ("removed", "max_seq_length"),
                     id="moved-0.13"),
        pytest.param("transformers.TrainingArguments", "warmup_steps", {"transformers": V("4.57.6")}, None,
                     id="irreversible-rename-never-goes-back"),
        pytest.param("transformers.TrainingArguments", "overwrite_output_dir", {"transformers": V("5.0.0")},
                     ("no_equivalent", None), id="no-equivalent"),
        pytest.param("transformers.AutoModelForCausalLM.from_pretrained", "torch_dtype",
                     {"transformers": V("4.56.0")}, ("deprecated", "dtype"), id="from-pretrained-wildcard"),
        pytest.param("transformers.TrainingArguments", "evaluation_strategy", {}, None, id="not-installed"),
        pytest.param("transformers.Seq2SeqTrainingArguments", "evaluation_strategy", {"transformers": V("4.51.0")},
                     ("removed", "eval_strategy"), id="seq2seq-args-inherit"),
        pytest.param("trl.GRPOConfig", "warmup_ratio", {"transformers": V("5.15.0")}, ("removed", "warmup_steps"),
                     id="trl-configs-inherit"),
        # DPOTrainer's own rule (TRL 0.12.0 -> 0.16.0) shadows Trainer's (transformers 4.46.0 -> 5.0.0)
        pytest.param("trl.DPOTrainer", "tokenizer", {"transformers": V("5.0.0"), "trl": V("0.11.4")}, None,
                     id="own-rule-shadows-inherited"),
        pytest.param("trl.GRPOTrainer", "tokenizer", {"transformers": V("5.0.0"), "trl": V("1.16.0")},
                     ("removed", "processing_class"), id="trl-trainers-inherit-trainer"),
        pytest.param("peft.AutoPeftModelForCausalLM.from_pretrained", "use_auth_token", {"transformers": V("5.0.0")},
                     ("removed", "token"), id="peft-auto-models-inherit-from-pretrained"),
        pytest.param("trl.DPOConfig", "max_prompt_length", {"trl": V("0.28.0")}, ("deprecated", None),
                     id="dpoconfig-deprecated-window"),
        pytest.param("datasets.load_dataset", "use_auth_token", {"datasets": V("3.0.0")}, ("removed", "token"),
                     id="datasets-load-dataset"),
    ],
)
def test_translate_table(callable_: str, keyword: str, versions: dict[str, Version],
                         expected: tuple[str, str | None] | None) -> None:
    t = rules.translate(DRIFT, callable_, keyword, versions)
    assert (None if t is None else (t.status, t.new)) == expected


def test_moved_keyword_takes_the_targets_current_name() -> None:
    assert rules.final_name(DRIFT, "trl.SFTConfig", "max_seq_length", {"trl": V("0.13.0")}) == "max_seq_length"
    assert rules.final_name(DRIFT, "trl.SFTConfig", "max_seq_length", {"trl": V("1.16.0")}) == "max_length"


def test_default_change_is_reported_only_when_the_keyword_is_left_out() -> None:
    rule = next(r for r in DRIFT.renames if r.kind == "default_changed")
    versions = {rule.package: rule.added}
    changes = rules.default_changes(DRIFT, rule.callable, [], versions)
    assert [c.keyword for c in changes] == [rule.old]
    assert f"since {rule.package} {rule.added}" in changes[0].describe()
    assert rules.default_changes(DRIFT, rule.callable, [rule.old], versions) == []


def test_every_status_has_its_wording() -> None:
    assert set(rules.VERB) == {rules.REMOVED, rules.DEPRECATED, rules.TOO_NEW, rules.NO_EQUIVALENT}


def test_every_inheriting_class_names_a_base_the_rules_know() -> None:
    known = rules.known_callables(DRIFT)
    for name, bases in rules.INHERITS.items():
        assert bases and all(any(rules.matches(k, b) or k == b for k in known) for b in bases), name
    assert set(rules.ANY_RECEIVER.values()) <= {r.callable for r in DRIFT.renames}
