"""envdoctor.compat for real: new transformers/TRL in the dev environment, and an older pair in a venv."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def new_run(tmp_path_factory: pytest.TempPathFactory, probe: Any) -> dict[str, Any]:
    return probe(sys.executable, "compat_probe.py", tmp_path_factory.mktemp("compat") / "new.json")


def test_old_names_on_new_library(new_run: dict[str, Any]) -> None:
    assert new_run["old_name_eval"] == "IntervalStrategy.STEPS"
    assert new_run["sft_config_old_name"] == {"max_length": 40, "max_seq_length": None}
    assert new_run["trainer_processing_class"] != "NoneType"


def test_max_seq_length_on_sfttrainer_becomes_sftconfig_max_length(new_run: dict[str, Any]) -> None:
    assert new_run["sft_trainer_args_type"] == "SFTConfig"
    assert new_run["sft_trainer_moved"] == {"max_length": 32, "max_seq_length": None, "dataset_text_field": "text"}
    assert new_run["train_loss_finite"] is True


def test_training_arguments_as_args_become_an_sftconfig(new_run: dict[str, Any]) -> None:
    # was: CompatError "activation_checkpointing is given twice" (to_dict lists the deprecated alias too)
    assert new_run["from_training_args"] == {"type": "SFTConfig", "learning_rate": 1e-3, "max_length": 24,
                                             "max_seq_length": None}


def test_warns_once_naming_old_new_and_version(new_run: dict[str, Any]) -> None:
    msgs = new_run["warnings"]
    evaluation = [m for m in msgs if "evaluation_strategy" in m]
    assert evaluation == ["envdoctor.compat: TrainingArguments(evaluation_strategy=...) -> "
                          "TrainingArguments(eval_strategy=...): `evaluation_strategy` is rejected by transformers "
                          f"{new_run['transformers']}"]  # the second identical call did not warn again
    assert any("SFTTrainer(max_seq_length=...) -> SFTConfig(max_length=...) passed as args=" in m for m in msgs)


def test_keyword_without_equivalent_is_a_clear_error(new_run: dict[str, Any]) -> None:
    assert new_run["removed_keyword"].startswith(
        "CompatError: TrainingArguments(save_safetensors=...) has no equivalent in transformers 5.")
    assert new_run["typo"].endswith("did you mean `eval_strategy`?")


def test_a_removed_keyword_is_dropped_or_rewritten_as_the_drift_data_says(new_run: dict[str, Any]) -> None:
    # drop = true: transformers 5 never reads overwrite_output_dir; group_by_length=True means
    # train_sampling_strategy='group_by_length' (true_means), as lint --fix rewrites them
    assert new_run["dropped_keyword"] == "gone"
    assert new_run["boolean_meant"] == "group_by_length"
    msgs = new_run["warnings"]
    assert any("TrainingArguments(overwrite_output_dir=...) -> dropped" in m for m in msgs)
    assert any("TrainingArguments(group_by_length=...) -> TrainingArguments(train_sampling_strategy='group_by_length')"
               in m for m in msgs)


@pytest.mark.slow
def test_both_directions_on_transformers_4_46_and_trl_0_12(old_pair_python: str, tmp_path: Path,
                                                          probe: Any) -> None:
    old = probe(old_pair_python, "compat_probe.py", tmp_path / "old.json")
    assert (old["transformers"], old["trl"]) == ("4.46.3", "0.12.2")
    # new name on the old library: SFTConfig(max_length=) becomes max_seq_length
    assert old["sft_config_new_name"] == {"max_length": None, "max_seq_length": 48}
    assert "envdoctor.compat: SFTConfig(max_length=...) -> SFTConfig(max_seq_length=...): `max_length` is not " \
           "known to trl 0.12.2" in old["warnings"]
    # SFTTrainer keywords go into SFTConfig under their 0.12 names, and the trainer really trains
    assert old["sft_trainer_moved"] == {"max_length": None, "max_seq_length": 32, "dataset_text_field": "text"}
    assert old["train_loss_finite"] is True
    assert old["removed_keyword"] == "accepted"  # save_safetensors still exists in 4.46.3
    assert old["dropped_keyword"] is True and old["boolean_meant"] == "True"  # and these are kept as given
    assert old["old_name_eval"] == "IntervalStrategy.STEPS"
    # was: CompatError "per_device_train_batch_size is given twice" (per_gpu_* aliases copied over)
    assert old["from_training_args"] == {"type": "SFTConfig", "learning_rate": 1e-3, "max_length": None,
                                         "max_seq_length": 24}


def test_importing_compat_does_not_import_torch() -> None:
    import subprocess

    code = ("import sys, envdoctor; envdoctor.compat; import envdoctor._drift.explain, envdoctor._lint.engine; "
            "assert not {'torch', 'transformers', 'trl', 'bitsandbytes', 'pip'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
