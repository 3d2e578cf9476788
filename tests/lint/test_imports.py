"""Removed imports (the drift matrix's [[imports]]): reported against the versions in use, rewritten where a
same-signature replacement exists, left alone with the way out where none does."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envdoctor.errors import MatrixError

Lint = Callable[..., tuple[int, str, str]]  # the `lint` fixture of conftest.py

# The shapes of real scripts: tloen/alpaca-lora finetune.py (`from peft import (..., prepare_model_for_int8_training,
# ...)` then `model = prepare_model_for_int8_training(model)`), the TRL 0.x docs' completion-only example
# (`from trl import DataCollatorForCompletionOnlyLM`), and the per-kernel attention classes people patched.
OLD = '''\
import peft
from peft import (
    LoraConfig,
    prepare_model_for_int8_training,
)
from trl import setup_chat_format
from trl.trainer.utils import DataCollatorForCompletionOnlyLM
from transformers.models.llama.modeling_llama import LlamaFlashAttention2, LlamaAttention

try:  # the shim some scripts carry for old peft: not a bug
    from peft import prepare_model_for_kbit_training
except ImportError:
    from peft import prepare_model_for_int8_training as prepare_model_for_kbit_training
from trl import clone_chat_template


def setup_chat_format_locally(model):  # a name of the user's own: not an import
    return model


def build(model):
    model = prepare_model_for_int8_training(model)
    return peft.prepare_model_for_int8_training(model)
'''


def test_removed_imports_are_errors_with_what_replaces_them(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "old.py"
    path.write_text(OLD, encoding="utf-8")
    code, out, _ = lint("--format", "json", str(path))
    assert code == 1
    found = {(i["line"], i["col"], i["keyword"], i["severity"], i["new"]) for i in json.loads(out)["issues"]}
    assert found == {
        (4, 5, "prepare_model_for_int8_training", "error", "prepare_model_for_kbit_training"),
        (6, 17, "setup_chat_format", "error", None),
        (7, 31, "DataCollatorForCompletionOnlyLM", "error", None),
        (8, 54, "LlamaFlashAttention2", "error", None),
        (23, 17, "prepare_model_for_int8_training", "error", "prepare_model_for_kbit_training"),
    }
    code, out, _ = lint(str(path))
    assert (f"{path}:6:17: error: `from trl import setup_chat_format`: setup_chat_format was removed in trl 0.26.0 "
            "(here ") in out and "use clone_chat_template(model, tokenizer, source)" in out
    assert "attn_implementation='flash_attention_2'" in out
    assert out.splitlines()[-1].startswith("5 removed imports in 1 file (judged against ")
    assert "peft " in out.splitlines()[-1]


def test_versions_before_the_removal_are_clean(tmp_path: Path, lint: Lint, write_matrix: Any) -> None:
    """Judged against a matrix that pins the old releases, the same imports are fine."""
    m = write_matrix('extends = "drift"\n'
                     + "".join(f'[[packages]]\nname = "{n}"\nspecifier = "=={v}"\nreason = "r"\nevidence = ["e"]\n'
                               for n, v in (("peft", "0.9.0"), ("trl", "0.19.1"), ("transformers", "4.47.1"))))
    path = tmp_path / "old.py"
    path.write_text(OLD, encoding="utf-8")
    code, out, _ = lint("--matrix", str(m), str(path))
    assert code == 0, out
    assert "removed" not in out and "peft 0.9.0 (matrix test@1.0)" in out


def test_fix_renames_the_import_and_every_use(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    path.write_text("import peft as P\nfrom peft import LoraConfig, prepare_model_for_int8_training\n"
                    "from peft import prepare_model_for_int8_training as prep\n"
                    "m = prepare_model_for_int8_training(None)\nm = prep(m)\nm = P.prepare_model_for_int8_training(m)\n",
                    encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == (
        "import peft as P\nfrom peft import LoraConfig, prepare_model_for_kbit_training\n"
        "from peft import prepare_model_for_kbit_training as prep\n"
        "m = prepare_model_for_kbit_training(None)\nm = prep(m)\nm = P.prepare_model_for_kbit_training(m)\n")
    assert f"fixed    {path}:2:30: prepare_model_for_int8_training -> prepare_model_for_kbit_training" in out
    assert lint(str(path))[0] == 0


def test_no_drop_in_is_left_alone_with_the_way_out(tmp_path: Path, lint: Lint) -> None:
    src = ("from trl import setup_chat_format\nfrom transformers.models.llama import modeling_llama\n"
           "def f(m, t):\n    return setup_chat_format(m, t), modeling_llama.LlamaSdpaAttention\n")
    path = tmp_path / "t.py"
    path.write_text(src, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1 and path.read_text(encoding="utf-8") == src
    assert f"NOT FIXED {path}:1:17: setup_chat_format: no drop-in replacement: use clone_chat_template" in out
    assert f"NOT FIXED {path}:4:52: LlamaSdpaAttention: no drop-in replacement: there is one LlamaAttention" in out


def test_notebook_import_in_one_cell_use_in_another(tmp_path: Path, lint: Lint) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": s}
             for s in (["!pip install peft==0.4.0\n", "from peft import prepare_model_for_int8_training\n"],
                       ["model = prepare_model_for_int8_training(model)"])]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    fixed = [("".join(c["source"])) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    assert fixed == ["!pip install peft==0.4.0\nfrom peft import prepare_model_for_kbit_training\n",
                     "model = prepare_model_for_kbit_training(model)"]


# The completion-only collator: TRL 0.x docs (trl/docs/source/sft_trainer.mdx, "Train on completions only",
# quoted in RorschachChen/GOODNOTES 2025/dataset_text_field.md) build it from a response template and pass it as
# data_collator=; TRL 0.20.0 removed it for SFTConfig(completion_only_loss=True) on prompt/completion data.
COLLATOR = '''\
from trl import SFTConfig, SFTTrainer, DataCollatorForCompletionOnlyLM

response_template = " ### Answer:"


def train(model, tokenizer, dataset):
    collator = DataCollatorForCompletionOnlyLM(response_template, tokenizer=tokenizer)
    cfg = SFTConfig(output_dir="out")
    trainer = SFTTrainer(model, args=cfg, train_dataset=dataset, data_collator=collator)
    return trainer
'''


def test_collator_becomes_completion_only_loss_with_what_to_check(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    path.write_text(COLLATOR, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == COLLATOR.replace(", DataCollatorForCompletionOnlyLM", "").replace(
        "    collator = DataCollatorForCompletionOnlyLM(response_template, tokenizer=tokenizer)\n", "").replace(
        'SFTConfig(output_dir="out")', 'SFTConfig(output_dir="out", completion_only_loss=True)').replace(
        ", data_collator=collator", "")
    assert (f"note     {path}:1:40: DataCollatorForCompletionOnlyLM -> SFTConfig(completion_only_loss=True); "
            "check: drop the collator") in out
    assert "columns 'prompt' and 'completion'" in out


@pytest.mark.parametrize("extra", [
    pytest.param(", formatting_func=formatting_prompts_func", id="formatting-func"),  # the TRL docs' own shape
    pytest.param(', dataset_text_field="text"', id="text-field"),
])
def test_collator_on_plain_text_is_left_alone(tmp_path: Path, lint: Lint, extra: str) -> None:
    src = COLLATOR.replace("data_collator=collator", f"data_collator=collator{extra}")
    path = tmp_path / "t.py"
    path.write_text(src, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1
    assert f"NOT FIXED {path}:1:40: DataCollatorForCompletionOnlyLM: " in out
    assert "says the examples are plain text, which completion_only_loss=True rejects" in out
    assert "DataCollatorForCompletionOnlyLM(response_template" in path.read_text(encoding="utf-8")


def test_an_import_rule_must_say_where_its_instance_went(write_matrix: Any) -> None:
    from envdoctor._matrix.loader import load_matrix

    m = write_matrix('[[imports]]\npackage = "trl"\nmodule = "trl"\nname = "X"\nremoved = "1.0"\ninstead = "y"\n'
                     'config_keyword = "completion_only_loss"\nreason = "r"\nevidence = ["e"]\n')
    with pytest.raises(MatrixError, match="`config_keyword` needs `callable` and `via`"):
        load_matrix(str(m), use_cache=False)
