"""The lint engine: every stale keyword at once, judged against installed or pinned versions (through the CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Lint = Callable[..., tuple[int, str, str]]  # the `lint` fixture of conftest.py


def test_reports_every_stale_keyword_at_once(stale_script: Path, lint: Lint) -> None:
    path = stale_script
    code, out, _ = lint(str(path), "--format", "json")
    data: dict[str, Any] = json.loads(out)
    stale = [(i["line"], i["keyword"], i["status"], i["new"]) for i in data["issues"] if i["severity"] != "info"]
    assert code == 1
    assert stale == [(11, "evaluation_strategy", "removed", "eval_strategy"), (19, "tokenizer", "removed",
                      "processing_class"), (20, "max_seq_length", "removed", "max_length"),
                     (21, "dataset_text_field", "removed", "dataset_text_field"), (23, "tokenizer", "removed",
                                                                                   "processing_class")]
    assert data["versions"]["transformers"] and data["version_sources"]["trl"] == "installed"
    assert data["schema_version"] == 1 and list(data) == sorted(data) and list(data["issues"][0]) == sorted(data["issues"][0])
    assert {i["severity"] for i in data["issues"]} == {"error", "info"}


def test_text_format_names_file_line_old_new_and_why(stale_script: Path, lint: Lint) -> None:
    path = stale_script
    code, out, _ = lint(str(path))
    line = next(x for x in out.splitlines() if ":20:" in x)
    assert line.startswith(f"{path}:20:9: error: SFTTrainer(max_seq_length=) -> SFTTrainer(args=SFTConfig(max_length=))")
    assert "TRL 0.13.0 removed max_seq_length" in line
    assert out.splitlines()[-1].startswith("5 stale keywords in 1 file (judged against ")
    assert "transformers 5." in out.splitlines()[-1]


def test_matrix_pins_judge_instead_of_installed(tmp_path: Path, lint: Lint,
                                               write_matrix: Any) -> None:
    m = write_matrix('extends = "drift"\n[[packages]]\nname = "transformers"\nspecifier = "==4.40.2"\nreason = "r"\n'
                     'evidence = ["e"]\n[[packages]]\nname = "trl"\nspecifier = "==0.12.2"\nreason = "r"\n'
                     'evidence = ["e"]\n')
    path = tmp_path / "new_style.py"
    path.write_text("from transformers import TrainingArguments\nfrom trl import SFTConfig\n"
                    "a = TrainingArguments(output_dir='o', eval_strategy='no')\n"
                    "c = SFTConfig(output_dir='o', max_length=512)\n", encoding="utf-8")
    code, out, _ = lint("--matrix", str(m), "--fix", str(path))
    assert code == 0, out
    assert "TrainingArguments(eval_strategy=) -> TrainingArguments(evaluation_strategy=)" in out
    assert path.read_text(encoding="utf-8").splitlines()[2:] == [
        "a = TrainingArguments(output_dir='o', evaluation_strategy='no')",
        "c = SFTConfig(output_dir='o', max_seq_length=512)"]


def test_syntax_error_is_reported_not_raised(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def f(:\n", encoding="utf-8")
    code, out, _ = lint(str(path))
    assert code == 2 and f"{path}:1: cannot parse" in out


def _stale(lint: Lint, path: Path, *argv: str) -> list[tuple[Any, ...]]:
    code, out, _ = lint(*argv, "--format", "json", str(path))
    data: dict[str, Any] = json.loads(out)
    return [(i["cell"], i["line"], i["callable"], i["keyword"], i["status"], i["new"]) for i in data["issues"]
            if i["severity"] != "info" and i["via"] != "import"]


def _messages(lint: Lint, path: Path) -> list[str]:
    _, out, _ = lint("--format", "json", str(path))
    return [i["message"] for i in json.loads(out)["issues"] if i["severity"] != "info"]


def test_subclasses_inherit_their_bases_rules(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "s.py"
    path.write_text(
        "from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments\n"
        "from trl import DPOConfig, DPOTrainer\n"
        "a = Seq2SeqTrainingArguments(output_dir='o', evaluation_strategy='epoch', predict_with_generate=True)\n"
        "t = Seq2SeqTrainer(model=m, args=a, tokenizer=tok)\n"
        "c = DPOConfig(output_dir='o', evaluation_strategy='steps', beta=0.1)\n"
        "d = DPOTrainer(m, args=c, tokenizer=tok, beta=0.1, max_prompt_length=128)\n", encoding="utf-8")
    assert _stale(lint, path) == [
        (None, 3, "transformers.Seq2SeqTrainingArguments", "evaluation_strategy", "removed", "eval_strategy"),
        (None, 4, "transformers.Seq2SeqTrainer", "tokenizer", "removed", "processing_class"),
        (None, 5, "trl.DPOConfig", "evaluation_strategy", "removed", "eval_strategy"),
        (None, 6, "trl.DPOTrainer", "tokenizer", "removed", "processing_class"),
        (None, 6, "trl.DPOTrainer", "beta", "removed", "beta"),
        # moved into DPOConfig in 0.13.0, which dropped it in 0.29.0: nothing to move it to
        (None, 6, "trl.DPOTrainer", "max_prompt_length", "no_equivalent", None)]


def test_a_trl_trainers_own_rule_shadows_trainers(tmp_path: Path, lint: Lint, write_matrix: Any) -> None:
    """DPOTrainer(tokenizer=) follows TRL's releases: fine on trl 0.11.4 even with transformers 4.46.3 (whose
    Trainer deprecated tokenizer=), deprecated on trl 0.12.2."""
    path = tmp_path / "d.py"
    path.write_text("from trl import DPOTrainer\nDPOTrainer(m, tokenizer=tok)\n", encoding="utf-8")
    pins = ('extends = "drift"\n[[packages]]\nname = "transformers"\nspecifier = "==4.46.3"\nreason = "r"\n'
            'evidence = ["e"]\n[[packages]]\nname = "trl"\nspecifier = "=={}"\nreason = "r"\nevidence = ["e"]\n')
    assert _stale(lint, path, "--matrix", str(write_matrix(pins.format("0.11.4")))) == []
    m = write_matrix(pins.format("0.12.2"))
    assert _stale(lint, path, "--matrix", str(m)) == [
        (None, 2, "trl.DPOTrainer", "tokenizer", "deprecated", "processing_class")]


def test_a_users_subclass_is_judged_as_its_base_and_its_stale_fields_are_named(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "args.py"
    path.write_text(
        "from dataclasses import dataclass, field\nimport transformers\n\n@dataclass\n"
        "class MyArgs(transformers.TrainingArguments):\n"
        "    warmup_ratio: float = field(default=0.03)\n"       # removed from TrainingArguments: ignored now
        "    optim: str = 'adamw_torch'\n"                      # still a field: fine
        "    model_max_length: int = 512\n\n"                   # the user's own: fine
        "class Deeper(MyArgs):\n    pass\n\n"
        "class TrainingArguments(transformers.TrainingArguments):\n    evaluation_strategy: str = 'steps'\n\n"
        "a = MyArgs(output_dir='o', evaluation_strategy='no', warmup_ratio=0.1, model_max_length=8)\n"
        "b = Deeper(output_dir='o', no_cuda=True)\n"
        "c = TrainingArguments(output_dir='o', evaluation_strategy='no')\n", encoding="utf-8")
    assert _stale(lint, path) == [
        (None, 6, "transformers.TrainingArguments", "warmup_ratio", "removed", "warmup_steps"),
        # not a @dataclass: its annotation is no field, and TrainingArguments(...) below is this class
        (None, 16, "transformers.TrainingArguments", "evaluation_strategy", "removed", "eval_strategy"),
        (None, 17, "transformers.TrainingArguments", "no_cuda", "removed", "use_cpu"),
        (None, 18, "transformers.TrainingArguments", "evaluation_strategy", "removed", "eval_strategy")]
    field_msg = _messages(lint, path)[0]
    assert field_msg.startswith("MyArgs(TrainingArguments) re-declares the field `warmup_ratio`")
    assert "silently ignored, so training changes without an error" in field_msg
    assert any(m.startswith("MyArgs(evaluation_strategy=) -> MyArgs(eval_strategy=)") for m in _messages(lint, path))


def test_keywords_in_dicts_that_reach_a_call(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "k.py"
    path.write_text(
        "from transformers import AutoModelForCausalLM, TrainingArguments\nfrom trl import SFTConfig\n\n"
        "def load(p):\n"
        "    kw = dict(torch_dtype='auto', use_flash_attention_2=True)\n"
        "    kw['load_in_8bit'] = True\n"
        "    return AutoModelForCausalLM.from_pretrained(p, **kw)\n\n"
        "def other():\n"
        "    kw = {'evaluation_strategy': 'no'}\n"                # another function's kw: not the one above
        "    return TrainingArguments(output_dir='o', **kw)\n\n"
        "def passthrough(**kw):\n"                            # its own **kw, not the module-level one below
        "    return TrainingArguments(output_dir='o', **kw)\n\n"
        "kw = {'no_cuda': True}\n"
        "cfg = SFTConfig(output_dir='o', model_init_kwargs={'use_auth_token': True, 'revision': 'main'})\n"
        "cfg.model_init_kwargs = dict(low_cpu_mem_usage=True)\n"
        "unused = {'evaluation_strategy': 'steps'}\n", encoding="utf-8")
    assert _stale(lint, path) == [
        (None, 5, "transformers.AutoModelForCausalLM.from_pretrained", "torch_dtype", "deprecated", "dtype"),
        (None, 5, "transformers.AutoModelForCausalLM.from_pretrained", "use_flash_attention_2", "no_equivalent",
         None),
        (None, 6, "transformers.AutoModelForCausalLM.from_pretrained", "load_in_8bit", "removed", "load_in_8bit"),
        (None, 10, "transformers.TrainingArguments", "evaluation_strategy", "removed", "eval_strategy"),
        (None, 17, "transformers.AutoModelForCausalLM.from_pretrained", "use_auth_token", "removed", "token"),
        (None, 18, "transformers.AutoModelForCausalLM.from_pretrained", "low_cpu_mem_usage", "deprecated", None)]
    assert "(reaches from_pretrained through **kw)" in _messages(lint, path)[0]


def test_a_dict_of_one_cell_reaches_calls_in_later_cells_once(tmp_path: Path, lint: Lint) -> None:
    cells = ["from transformers import AutoModelForCausalLM\nmodel_kwargs = dict(torch_dtype='auto')",
             "a = AutoModelForCausalLM.from_pretrained('x', **model_kwargs)",
             "b = AutoModelForCausalLM.from_pretrained('y', **model_kwargs)"]
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
                    for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    assert _stale(lint, path) == [
        (1, 2, "transformers.AutoModelForCausalLM.from_pretrained", "torch_dtype", "deprecated", "dtype")]


def test_push_to_hub_on_any_receiver_and_peft_auto_models(tmp_path: Path, lint: Lint) -> None:
    path = tmp_path / "p.py"
    path.write_text("from peft import AutoPeftModelForCausalLM\nimport transformers\n"
                    "m = AutoPeftModelForCausalLM.from_pretrained('o', torch_dtype='auto', is_trainable=False)\n"
                    "m.push_to_hub('r', use_temp_dir=False, token=t)\n", encoding="utf-8")
    assert _stale(lint, path) == [
        (None, 3, "peft.AutoPeftModelForCausalLM.from_pretrained", "torch_dtype", "deprecated", "dtype"),
        (None, 4, "transformers.*.push_to_hub", "use_temp_dir", "no_equivalent", None)]
    plain = tmp_path / "no_transformers.py"  # a file that does not import transformers: its push_to_hub is not judged
    plain.write_text("import datasets\nds.push_to_hub('r', use_temp_dir=False)\n", encoding="utf-8")
    assert _stale(lint, plain) == []
