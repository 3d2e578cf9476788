"""lint --fix: LibCST rewrites that keep formatting and comments; what is unsafe is left alone and said."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Lint = Callable[..., tuple[int, str, str]]  # the `lint` fixture of conftest.py

EXPECTED_FIXED = '''\
import transformers as tf
from transformers import AutoModelForCausalLM, TrainingArguments
from trl import SFTConfig, SFTTrainer

MAX_LEN = 64


def build(model, tok, ds):
    args = TrainingArguments(
        output_dir="out",
        eval_strategy="no",  # keep this comment
        use_cpu=True,
    )
    cfg = SFTConfig(output_dir="out", use_cpu=True, bf16=False, report_to="none", max_steps=1, max_length=MAX_LEN, dataset_text_field="text")
    trainer = SFTTrainer(
        model=model,
        args=cfg,
        train_dataset=ds,
        processing_class=tok,
    )
    plain = tf.Trainer(model=model, args=args, processing_class=tok)
    return trainer, plain
'''


def test_fix_rewrites_keeping_comments_and_the_result_runs(stale_script: Path, tmp_path: Path, lint: Lint) -> None:
    path = stale_script
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == EXPECTED_FIXED
    assert lint(str(path))[0] == 0  # nothing stale is left
    # the rewritten code builds real trainers with the installed transformers/TRL
    probe = Path(__file__).parents[1] / "drift" / "compat_probe.py"
    check = (f"import importlib.util, sys; sys.path.insert(0, {str(probe.parent)!r}); import compat_probe; "
             f"from datasets import Dataset; spec = importlib.util.spec_from_file_location('t', {str(path)!r}); "
             "t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t); "
             "m, tok = compat_probe.tiny_model_and_tokenizer(); "
             "tr, plain = t.build(m, tok, Dataset.from_dict({'text': ['hello world'] * 2})); "
             "assert tr.args.max_length == 64 and tr.args.dataset_text_field == 'text'")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_fix_reports_what_it_cannot_fix(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    path.write_text("from transformers import TrainingArguments\nfrom trl import SFTTrainer\n"
                    "a = TrainingArguments(output_dir='o', include_inputs_for_metrics=True)\n"
                    "def f(m, c, n):\n    return SFTTrainer(m, c, max_seq_length=n)\n"
                    "SFTTrainer(model='m', args=a, packing=True)\nprint(a.output_dir, a)\n", encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1
    assert f"NOT FIXED {path}:3:39: include_inputs_for_metrics: no equivalent" in out
    assert f"NOT FIXED {path}:5:29: max_seq_length: there is no args= to put it in" in out
    # `a` is read elsewhere too (print(a)): rewriting it into an SFTConfig would change that other use
    assert (f"NOT FIXED {path}:6:31: packing: args=a is a TrainingArguments that is also used elsewhere (2 reads): "
            "build it as SFTConfig(...) with packing=... yourself") in out


def test_unsafe_move_is_left_alone(tmp_path: Path, lint: Lint) -> None:
    src = ("from trl import SFTConfig, SFTTrainer\ncfg = SFTConfig(output_dir='o')\n"
           "def f(m, n):\n    return SFTTrainer(model=m, args=cfg, max_seq_length=n * 2)\n")
    path = tmp_path / "t.py"
    path.write_text(src, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1 and "may not exist where cfg is built" in out
    assert path.read_text(encoding="utf-8") == src


def test_notebook_cells_magics_and_fix(tmp_path: Path, lint: Lint) -> None:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# QLoRA\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["!pip install -q trl==0.8.6\n", "from transformers import TrainingArguments\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["%time x = 1\n", "args = TrainingArguments(output_dir='o', evaluation_strategy='no')\n",
                    "TrainingArguments?"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["%%bash\n", "echo evaluation_strategy=no\n"]},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    code, out, _ = lint(str(path))
    assert code == 1 and f"{path} [cell 2]:2:42: error: TrainingArguments(evaluation_strategy=)" in out
    assert lint("--fix", str(path))[0] == 0
    fixed = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert "".join(fixed[2]["source"]) == ("%time x = 1\nargs = TrainingArguments(output_dir='o', "
                                           "eval_strategy='no')\nTrainingArguments?")
    assert fixed[1]["source"] == cells[1]["source"] and fixed[3]["source"] == cells[3]["source"]


def test_fix_without_libcst_says_how_to_install(tmp_path: Path, lint: Lint,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.py"
    path.write_text("from transformers import TrainingArguments\nTrainingArguments(evaluation_strategy='no')\n",
                    encoding="utf-8")
    monkeypatch.setitem(sys.modules, "libcst", None)
    code, _, err = lint("--fix", str(path))
    assert code == 2 and "pip install 'envdoctor[lint]'" in err


def test_move_into_a_config_built_over_several_lines(tmp_path: Path, lint: Lint) -> None:
    """The config call is found through a dotted name that spans lines (LibCST node -> the `ast` finder)."""
    path = tmp_path / "t.py"
    path.write_text("import trl\ndef f(m):\n    cfg = (trl\n           .SFTConfig(output_dir='o'))\n"
                    "    return trl.SFTTrainer(model=m, args=cfg, max_seq_length=8)\n", encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8").splitlines()[3:] == [
        "           .SFTConfig(output_dir='o', max_length=8))", "    return trl.SFTTrainer(model=m, args=cfg)"]


def _pinned(write_matrix: Any, transformers: str, trl: str) -> str:
    return str(write_matrix('extends = "drift"\n' + "".join(
        f'[[packages]]\nname = "{n}"\nspecifier = "=={v}"\nreason = "r"\nevidence = ["e"]\n'
        for n, v in (("transformers", transformers), ("trl", trl)))))


# The seed 002_56a4181f157b074b.txt's shape (a TrainingArguments variable, then SFTTrainer(args=training_args,
# max_seq_length=..., dataset_text_field=...)), as in 0PeterAdel/CyberBrain_Model
# Operations/Configure_Training_Arguments.py: `training_args = TrainingArguments(...)`, then `SFTTrainer(model=model,
# tokenizer=tokenizer, ..., dataset_text_field="text", max_seq_length=2048, args=training_args)`.
SEED = """\
from transformers import TrainingArguments
from trl import SFTTrainer


def main(model, tokenizer, train_dataset):
    training_args = TrainingArguments(
        per_device_train_batch_size=2,
        learning_rate=2e-4,
        output_dir="outputs",
    )
    trainer = SFTTrainer(
        model=model,
        tokenizer=tokenizer,
        train_dataset=train_dataset,
        dataset_text_field="text",
        max_seq_length=2048,
        args=training_args,
    )
    return trainer
"""

SEED_FIXED = """\
from transformers import TrainingArguments
from trl import SFTTrainer, SFTConfig


def main(model, tokenizer, train_dataset):
    training_args = SFTConfig(
        per_device_train_batch_size=2,
        learning_rate=2e-4,
        output_dir="outputs",
        dataset_text_field="text",
        max_length=2048,
        logging_steps=500,
        activation_checkpointing=False,
        bf16=False,
    )
    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=train_dataset,
        args=training_args,
    )
    return trainer
"""


def test_training_arguments_that_only_reach_sfttrainer_become_sftconfig(tmp_path: Path, lint: Lint,
                                                                        write_matrix: Any) -> None:
    path = tmp_path / "t.py"
    path.write_text(SEED, encoding="utf-8")
    code, out, _ = lint("--matrix", _pinned(write_matrix, "5.24.0", "1.16.0"), "--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == SEED_FIXED
    assert (f"note     {path}:6:21: TrainingArguments(...) -> SFTConfig(...), which takes the keywords moved out "
            "of the trainer; TrainingArguments's defaults written out where SFTConfig's differ: "
            "logging_steps=500, activation_checkpointing=False, bf16=False") in out
    assert "fixed 3, left 0" in out.splitlines()[-1]


def test_the_kept_defaults_are_spelled_for_the_versions_judged(tmp_path: Path, lint: Lint,
                                                               write_matrix: Any) -> None:
    """Before transformers 5.23 the checkpointing keyword is gradient_checkpointing; `import trl` is reused."""
    path = tmp_path / "t.py"
    path.write_text("import transformers, trl\n"
                    "t = trl.SFTTrainer(model='m', args=transformers.TrainingArguments('o', bf16=True),"
                    " max_seq_length=128)\n", encoding="utf-8")
    code, out, _ = lint("--matrix", _pinned(write_matrix, "4.46.3", "0.13.0"), "--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8").splitlines()[1] == (
        "t = trl.SFTTrainer(model='m', args=trl.SFTConfig('o', bf16=True, max_seq_length=128, learning_rate=5e-05, "
        "logging_steps=500, gradient_checkpointing=False))")


def test_an_sfttrainer_without_args_gets_the_old_default_config(tmp_path: Path, lint: Lint,
                                                               write_matrix: Any) -> None:
    """TRL's own 0.x README: SFTTrainer("facebook/opt-350m", train_dataset=dataset, dataset_text_field="text",
    max_seq_length=512) (quoted in RorschachChen/GOODNOTES 2025/dataset_text_field.md)."""
    path = tmp_path / "t.py"
    path.write_text('"""Doc."""\nfrom datasets import load_dataset\nfrom trl.trainer import SFTTrainer\n\n'
                    'dataset = load_dataset("imdb", split="train")\n'
                    'trainer = SFTTrainer(\n    "facebook/opt-350m",\n    train_dataset=dataset,\n'
                    '    dataset_text_field="text",\n    max_seq_length=512,\n)\n', encoding="utf-8")
    code, out, _ = lint("--matrix", _pinned(write_matrix, "5.24.0", "1.16.0"), "--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == (
        '"""Doc."""\nfrom datasets import load_dataset\nfrom trl.trainer import SFTTrainer\nfrom trl import SFTConfig\n'
        '\ndataset = load_dataset("imdb", split="train")\n'
        'trainer = SFTTrainer(\n    "facebook/opt-350m",\n    train_dataset=dataset,\n'
        '    args=SFTConfig(output_dir="tmp_trainer", dataset_text_field="text", max_length=512, learning_rate=5e-05, '
        'logging_steps=500, activation_checkpointing=False, bf16=False),\n)\n')
    assert 'args= was not given: added args=SFTConfig(output_dir="tmp_trainer", ...)' in out


def test_star_kwargs_keep_their_own_defaults(tmp_path: Path, lint: Lint) -> None:
    """TrainingArguments(**cfg) may already set learning_rate: writing it again would be a TypeError."""
    path = tmp_path / "t.py"
    path.write_text("from transformers import TrainingArguments\nfrom trl import SFTConfig, SFTTrainer\n"
                    "def f(m, cfg):\n    return SFTTrainer(model=m, args=TrainingArguments(**cfg), packing=True)\n",
                    encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8").splitlines()[3] == (
        "    return SFTTrainer(model=m, args=SFTConfig(**cfg, packing=True))")


def test_a_config_returned_by_a_function_of_the_script(tmp_path: Path, lint: Lint) -> None:
    """Shymaa2611/Finetuning_Gamma_antonyms training.py: `args` is a variable in two functions; the moved value
    must exist inside the function that builds the config (a literal does, the caller's `n` does not)."""
    path = tmp_path / "t.py"
    src = ("from transformers import TrainingArguments\nfrom trl import SFTTrainer\n\n"
           "def make():\n    args = TrainingArguments(output_dir='o')\n    return args\n\n"
           "def train(m, n):\n    args = make()\n    return SFTTrainer(\n        args=args,\n        model=m,\n"
           "        dataset_text_field='lemma',\n        max_seq_length=n\n    )\n")
    path.write_text(src, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1
    assert f"NOT FIXED {path}:14:9: max_seq_length: the value `n` may not exist where args is built" in out
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[4].startswith("    args = SFTConfig(output_dir='o', dataset_text_field='lemma', learning_rate=5e-05")
    assert lines[9:] == ["    return SFTTrainer(", "        args=args,", "        model=m,",
                         "        max_seq_length=n", "    )"]


def test_a_function_called_twice_is_left_alone(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    src = ("from transformers import TrainingArguments\nfrom trl import SFTTrainer\n"
           "def make():\n    return TrainingArguments(output_dir='o')\n"
           "def train(m):\n    return SFTTrainer(args=make(), model=m, packing=True), make()\n")
    path.write_text(src, encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1 and path.read_text(encoding="utf-8") == src
    assert "packing: args=make() is not a SFTConfig(...) built once in this file" in out


def test_a_value_bound_before_the_config_moves_one_bound_after_does_not(tmp_path: Path, lint: Lint) -> None:
    """The trl examples' shape: `script_args = parser.parse_args()` then `max_seq_length=script_args.max_seq_length`."""
    path = tmp_path / "t.py"
    path.write_text("from transformers import TrainingArguments\nfrom trl import SFTTrainer\n"
                    "def main(parser, m):\n    script_args = parser.parse_args()\n"
                    "    training_args = TrainingArguments(output_dir=script_args.out)\n    n = 2\n"
                    "    return SFTTrainer(model=m, args=training_args, max_seq_length=script_args.max_seq_length,\n"
                    "                      dataset_num_proc=n)\n", encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 1
    assert f"NOT FIXED {path}:8:23: dataset_num_proc: the value `n` may not exist where training_args is built" in out
    assert path.read_text(encoding="utf-8").splitlines()[4].startswith(
        "    training_args = SFTConfig(output_dir=script_args.out, max_length=script_args.max_seq_length, ")


def test_from_pretrained_without_quantization_config_gets_one(tmp_path: Path, lint: Lint) -> None:
    """tloen/alpaca-lora finetune.py: LlamaForCausalLM.from_pretrained(base_model, load_in_8bit=True, ...);
    BitsAndBytesConfig is imported next to the import the file has from transformers."""
    path = tmp_path / "t.py"
    path.write_text("import torch\nfrom transformers import LlamaForCausalLM\n"
                    "model = LlamaForCausalLM.from_pretrained(\n    'm',\n    load_in_8bit=True,\n"
                    "    device_map='auto',\n)\n", encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == (
        "import torch\nfrom transformers import LlamaForCausalLM, BitsAndBytesConfig\n"
        "model = LlamaForCausalLM.from_pretrained(\n    'm',\n    device_map='auto',\n"
        "    quantization_config=BitsAndBytesConfig(load_in_8bit=True),\n)\n")


def test_an_unused_collator_import_is_removed(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "t.py"
    path.write_text("from trl import SFTTrainer, DataCollatorForCompletionOnlyLM\nSFTTrainer\n", encoding="utf-8")
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    assert path.read_text(encoding="utf-8") == "from trl import SFTTrainer\nSFTTrainer\n"
    assert "DataCollatorForCompletionOnlyLM was imported but not used: the import is removed" in out


def _notebook(path: Path, *cells: str) -> None:
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None,
                                           "outputs": [], "source": c} for c in cells],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")


def test_a_notebook_cell_uses_what_earlier_cells_bind(tmp_path: Path, lint: Lint) -> None:
    """mlabonne's Llama 2 fine-tuning Colab shape: the parameters in one cell, TrainingArguments and
    SFTTrainer(max_seq_length=max_seq_length, packing=packing) in the next; a variable read by a later cell
    is used elsewhere."""
    params = "from transformers import TrainingArguments\nfrom trl import SFTTrainer\nmax_seq_length = None\npacking = False\n"
    train = ("args = TrainingArguments(output_dir='o')\n"
             "trainer = SFTTrainer(model='m', args=args, max_seq_length=max_seq_length, packing=packing)\n")
    path = tmp_path / "nb.ipynb"
    _notebook(path, params, train)
    code, out, _ = lint("--fix", str(path))
    assert code == 0, out
    cell = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][1]["source"])
    assert cell.startswith("from trl import SFTConfig\nargs = SFTConfig(output_dir='o', max_length=max_seq_length, "
                           "packing=packing, ")
    _notebook(path, params, train, "print(args)\n")
    code, out, _ = lint("--fix", str(path))
    assert code == 1 and "args=args is a TrainingArguments that is also used elsewhere (2 reads)" in out
