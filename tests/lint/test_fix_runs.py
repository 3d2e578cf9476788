"""After `lint --fix`, old scripts shaped like real public ones build their trainer and train one step on today's
transformers/TRL/peft; the unfixed copies fail. Each script is small, written here, and cites the file it imitates;
the changes from the original are said beside it (a local tiny model instead of the hub id, CPU-only optimizer and
precision, max_steps=1). The model is a 2-layer random Llama built from a LlamaConfig with a word-level tokenizer,
saved to a folder: no hub downloads.

The expected keywords were written from the real signatures before the tool ran: `fixed` must be fixed, `left`
must be reported NOT FIXED (and that script is then not expected to run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from envdoctor._cli import main

pytestmark = pytest.mark.filterwarnings("ignore")

MAKE_TINY = r'''
import json, sys
from pathlib import Path
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

out = Path(sys.argv[1])
rows = [{"text": f"### Question: what is {a} plus {b} ### Answer: {a + b}", "question": f"what is {a} plus {b}",
         "answer": str(a + b), "instruction": f"add {a} and {b}", "input": "", "output": str(a + b),
         "lemma": f"{a} plus {b} is {a + b}"}
        for a in range(4) for b in range(2)]
(out / "data.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
words = ["<pad>", "<unk>", "<s>", "</s>"] + sorted({w for r in rows for v in r.values() for w in
                                                     v.replace("#", " # ").replace(":", " : ").split()} | {"#", ":"})
tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
tok.pre_tokenizer = Whitespace()
tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                    eos_token="</s>")
config = LlamaConfig(vocab_size=len(words), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, pad_token_id=0,
                     bos_token_id=2, eos_token_id=3)
LlamaForCausalLM(config).save_pretrained(out / "tiny")
tokenizer.save_pretrained(out / "tiny")
'''

# Runs each script as __main__ in one interpreter (imports paid once); records how far Trainer.train got.
RUNNER = r'''
import json, runpy, sys
import transformers
steps = []
_train = transformers.Trainer.train
def train(self, *a, **k):
    out = _train(self, *a, **k)
    steps.append([type(self).__name__, self.state.global_step])
    return out
transformers.Trainer.train = train
results = {}
for path in sys.argv[1:]:
    steps.clear()
    try:
        runpy.run_path(path, run_name="__main__")
        results[path] = {"ok": True, "trained": list(steps)}
    except BaseException as e:
        results[path] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:400]}
print("RESULTS " + json.dumps(results))
'''


@dataclass(frozen=True)
class Old:
    """One old script: what it imitates, its text (@MODEL@, @DATA@, @OUT@ filled in), what --fix must do."""

    name: str
    source: str
    code: str
    fixed: tuple[str, ...]
    left: tuple[str, ...] = ()


CORPUS = [
    # 0PeterAdel/CyberBrain_Model Operations/Configure_Training_Arguments.py: training_args = TrainingArguments(...)
    # then SFTTrainer(model=, tokenizer=, train_dataset=, eval_dataset=, dataset_text_field="text",
    # max_seq_length=2048, args=training_args). Changed: fp16=True/optim="adamw_8bit" -> CPU ones, max_steps=1,
    # and evaluation_strategy, the spelling that script's comment says it had before.
    Old("cyberbrain", "0PeterAdel/CyberBrain_Model Operations/Configure_Training_Arguments.py", '''\
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
from trl import SFTTrainer

model = AutoModelForCausalLM.from_pretrained("@MODEL@")
tokenizer = AutoTokenizer.from_pretrained("@MODEL@")
train_dataset = load_dataset("json", data_files="@DATA@", split="train")
eval_dataset = train_dataset

training_args = TrainingArguments(
    per_device_train_batch_size=2,
    gradient_accumulation_steps=4,
    warmup_steps=5,
    max_steps=1,
    learning_rate=2e-4,
    logging_steps=10,
    output_dir="@OUT@/cyberbrain",
    optim="adamw_torch",
    evaluation_strategy="steps",  # Use eval_strategy instead of evaluation_strategy
    eval_steps=20,
    report_to="none",
)

trainer = SFTTrainer(
    model=model,
    tokenizer=tokenizer,
    train_dataset=train_dataset,
    eval_dataset=eval_dataset,
    dataset_text_field="text",
    max_seq_length=2048,
    args=training_args,
)
trainer.train()
''', fixed=("evaluation_strategy", "tokenizer", "dataset_text_field", "max_seq_length")),
    # tathagatoroy/Controllable_Summarization_Experiments llama3/test_hf_fsdp_qlora.py: LoraConfig(...,
    # target_modules="all-linear"), SFTTrainer(model=, train_dataset=, peft_config=, dataset_text_field="text",
    # max_seq_length=max_seq_length, tokenizer=, args=training_arguments). Changed: no 4-bit BitsAndBytesConfig
    # (CPU), float32 instead of bfloat16, max_steps=1.
    Old("fsdp-qlora", "tathagatoroy/Controllable_Summarization_Experiments llama3/test_hf_fsdp_qlora.py", '''\
import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
from trl import SFTTrainer

max_seq_length = 512
dataset = load_dataset("json", data_files="@DATA@", split="train")

model = AutoModelForCausalLM.from_pretrained(
    "@MODEL@",
    torch_dtype=torch.float32,
)
tokenizer = AutoTokenizer.from_pretrained("@MODEL@")
peft_config = LoraConfig(
    lora_alpha=16,
    lora_dropout=0.1,
    r=32,
    bias="none",
    task_type="CAUSAL_LM",
    target_modules="all-linear",
)
training_arguments = TrainingArguments(output_dir="@OUT@/fsdp", per_device_train_batch_size=2, max_steps=1,
                                       report_to="none")

trainer = SFTTrainer(
    model=model,
    train_dataset=dataset,
    peft_config=peft_config,
    dataset_text_field="text",
    max_seq_length=max_seq_length,
    tokenizer=tokenizer,
    args=training_arguments,
)
trainer.train()
''', fixed=("torch_dtype", "dataset_text_field", "max_seq_length", "tokenizer")),
    # tloen/alpaca-lora finetune.py: prepare_model_for_int8_training(model), LoraConfig(q_proj, v_proj),
    # transformers.Trainer(args=transformers.TrainingArguments(..., evaluation_strategy=...), data_collator=
    # transformers.DataCollatorForSeq2Seq(...)). Changed: no load_in_8bit (CPU), fp16=False, max_steps=1,
    # report_to="none".
    Old("alpaca-lora", "tloen/alpaca-lora finetune.py", '''\
import torch
import transformers
from datasets import load_dataset

from peft import (
    LoraConfig,
    get_peft_model,
    prepare_model_for_int8_training,
)
from transformers import AutoTokenizer, LlamaForCausalLM


def train(base_model="@MODEL@", data_path="@DATA@", output_dir="@OUT@/alpaca", micro_batch_size=2,
          cutoff_len=64, val_set_size=0, group_by_length=False):
    model = LlamaForCausalLM.from_pretrained(base_model, torch_dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    tokenizer.pad_token_id = 0

    def generate_and_tokenize_prompt(data_point):
        prompt = f"{data_point['instruction']} {data_point['input']} {data_point['output']}"
        result = tokenizer(prompt, truncation=True, max_length=cutoff_len, padding=False)
        result["labels"] = result["input_ids"].copy()
        return result

    model = prepare_model_for_int8_training(model)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.05, bias="none",
                        task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    data = load_dataset("json", data_files=data_path)
    train_data = data["train"].shuffle().map(generate_and_tokenize_prompt, remove_columns=data["train"].column_names)
    trainer = transformers.Trainer(
        model=model,
        train_dataset=train_data,
        eval_dataset=None,
        args=transformers.TrainingArguments(
            per_device_train_batch_size=micro_batch_size,
            warmup_steps=100,
            max_steps=1,
            learning_rate=3e-4,
            fp16=False,
            logging_steps=10,
            optim="adamw_torch",
            evaluation_strategy="steps" if val_set_size > 0 else "no",
            save_strategy="steps",
            save_steps=200,
            output_dir=output_dir,
            group_by_length=group_by_length,
            report_to="none",
        ),
        data_collator=transformers.DataCollatorForSeq2Seq(
            tokenizer, pad_to_multiple_of=8, return_tensors="pt", padding=True
        ),
    )
    model.config.use_cache = False
    trainer.train()


if __name__ == "__main__":
    train()
''', fixed=("torch_dtype", "prepare_model_for_int8_training", "evaluation_strategy", "group_by_length")),
    # JAYANDJEAN/From_Transformer_to_GPTs 04_llama2/05_sfttrainer.py: SFTConfig(dataset_text_field="text",
    # max_seq_length=512, output_dir="/tmp") and SFTTrainer("facebook/opt-350m", train_dataset=, args=sft_config).
    # Changed: the local model folder for the hub id, max_steps=1, report_to="none", bf16=False (CPU).
    Old("sftconfig-imdb", "JAYANDJEAN/From_Transformer_to_GPTs 04_llama2/05_sfttrainer.py", '''\
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

dataset = load_dataset("json", data_files="@DATA@", split="train")

sft_config = SFTConfig(
    dataset_text_field="text",
    max_seq_length=512,
    output_dir="@OUT@/imdb",
    max_steps=1,
    report_to="none",
    bf16=False,
)
trainer = SFTTrainer(
    "@MODEL@",
    train_dataset=dataset,
    args=sft_config,
)
trainer.train()
''', fixed=("max_seq_length",)),
    # KhushiPattanshetti/prompt-optimisation rewriter_sft_svc/model_trainer.py: from_pretrained(torch_dtype=dtype),
    # LoraConfig + get_peft_model, SFTConfig(..., max_seq_length=MAX_SEQ_LENGTH, warmup_ratio=WARMUP_RATIO,
    # eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True, dataset_text_field="text",
    # overwrite_output_dir=True) and SFTTrainer(model=, args=sft_config, ..., tokenizer=tokenizer). Changed: the
    # config module's constants written inline (small), the local model folder, CPU only (fp16=False, and
    # bf16=False: SFTConfig's bf16 default needs a GPU), max_steps=1.
    Old("phi3-rewriter", "KhushiPattanshetti/prompt-optimisation rewriter_sft_svc/model_trainer.py", '''\
import torch
from datasets import load_dataset
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

MAX_SEQ_LENGTH = 64
WARMUP_RATIO = 0.03


def train(checkpoint_dir="@OUT@/rewriter"):
    tokenizer = AutoTokenizer.from_pretrained("@MODEL@", padding_side="right")
    dtype = torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        "@MODEL@",
        torch_dtype=dtype,
        device_map={"": "cpu"},
    )
    model.config.use_cache = False
    lora_config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                             bias="none", task_type=TaskType.CAUSAL_LM)
    model = get_peft_model(model, lora_config)
    train_dataset = load_dataset("json", data_files="@DATA@", split="train")
    val_dataset = train_dataset

    sft_config = SFTConfig(
        output_dir=checkpoint_dir,
        per_device_train_batch_size=2,
        learning_rate=2e-4,
        max_seq_length=MAX_SEQ_LENGTH,
        warmup_ratio=WARMUP_RATIO,
        optim="adamw_torch",
        max_steps=1,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        fp16=False,
        bf16=False,
        dataset_text_field="text",
        report_to="none",
        overwrite_output_dir=True,
    )

    trainer = SFTTrainer(
        model=model,
        args=sft_config,
        train_dataset=train_dataset,
        eval_dataset=val_dataset,
        tokenizer=tokenizer,
    )
    trainer.train()
    trainer.model.save_pretrained(checkpoint_dir)
    return checkpoint_dir


if __name__ == "__main__":
    train()
''', fixed=("torch_dtype", "max_seq_length", "warmup_ratio", "tokenizer", "overwrite_output_dir")),
    # micchyboy237/jetbot jet-modelfiles/finetune-ignore-input/finetune-custom-packed-dataset.py (the TRL 0.x
    # README's packing example): SFTTrainer("facebook/opt-350m", train_dataset=, packing=True,
    # formatting_func=formatting_func, max_seq_length=512) with no args=. Changed: the local model folder.
    Old("packed-no-args", "micchyboy237/jetbot jet-modelfiles/finetune-ignore-input/finetune-custom-packed-dataset.py",
        '''\
from transformers import AutoModelForCausalLM
from datasets import load_dataset
from trl import SFTTrainer

dataset = load_dataset("json", data_files="@DATA@", split="train")


def formatting_func(example):
    text = f"### Question: {example['question']}\\n ### Answer: {example['answer']}"
    return text


trainer = SFTTrainer(
    "@MODEL@",
    train_dataset=dataset,
    packing=True,
    formatting_func=formatting_func,
    max_seq_length=512,
)

trainer.train()
''', fixed=("packing", "max_seq_length")),
    # Shymaa2611/Finetuning_Gamma_antonyms training.py: the TrainingArguments come back from a function of the
    # script (args = Training_Arguments()) that nothing else calls; SFTTrainer(args=args, ..., packing=False) with
    # its closing parenthesis on its own line. Changed: one example a batch, max_steps=1, report_to="none"
    # (the original logs to tensorboard, fp16, paged_adamw_8bit), and a __main__ block in place of its main.py.
    Old("args-from-a-function", "Shymaa2611/Finetuning_Gamma_antonyms training.py", '''\
import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM
from trl import SFTTrainer
from transformers import TrainingArguments


def Training_Arguments():
    args = TrainingArguments(per_device_train_batch_size=1, max_steps=1, output_dir="@OUT@/gamma", report_to="none")
    return args


def Trainer(train_loader, model, lora_config):
    args = Training_Arguments()
    trainer = SFTTrainer(
        args=args,
        train_dataset=train_loader.dataset,
        model=model,
        peft_config=lora_config,
        dataset_text_field="lemma",
        packing=False
    )
    return trainer


if __name__ == "__main__":
    loader = torch.utils.data.DataLoader(load_dataset("json", data_files="@DATA@", split="train"))
    model = AutoModelForCausalLM.from_pretrained("@MODEL@")
    Trainer(loader, model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")).train()
''', fixed=("dataset_text_field", "packing")),
    # The TRL 0.x docs' completion-only example (quoted in RorschachChen/GOODNOTES 2025/dataset_text_field.md):
    # formatting_prompts_func builds plain text, DataCollatorForCompletionOnlyLM(" ### Answer:") masks the prompt.
    # completion_only_loss needs prompt/completion data, so --fix says how instead of guessing.
    Old("completion-only-docs", "RorschachChen/GOODNOTES 2025/dataset_text_field.md", '''\
from trl import SFTTrainer, DataCollatorForCompletionOnlyLM


def formatting_prompts_func(example):
    output_texts = []
    for i in range(len(example['instruction'])):
        text = f"### Question: {example['instruction'][i]}\\n ### Answer: {example['output'][i]}"
        output_texts.append(text)
    return output_texts


def build(model, dataset, tokenizer):
    response_template = " ### Answer:"
    collator = DataCollatorForCompletionOnlyLM(response_template, tokenizer=tokenizer)
    return SFTTrainer(
        model,
        train_dataset=dataset,
        formatting_func=formatting_prompts_func,
        data_collator=collator,
    )
''', fixed=(), left=("DataCollatorForCompletionOnlyLM",)),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny/ (model + tokenizer) and data.json."""
    root = tmp_path_factory.mktemp("tiny")
    proc = subprocess.run([sys.executable, "-c", MAKE_TINY, str(root)], capture_output=True, text=True,
                          env=_offline(root))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def _offline(root: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(root / "hf"), "CUDA_VISIBLE_DEVICES": "", "WANDB_DISABLED": "true",
            "TOKENIZERS_PARALLELISM": "false"}


def _write(old: Old, folder: Path, tiny: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{old.name}.py"
    path.write_text(old.code.replace("@MODEL@", str(tiny / "tiny")).replace("@DATA@", str(tiny / "data.json"))
                    .replace("@OUT@", str(folder / "out")), encoding="utf-8")
    return path


def _fix(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    main(["lint", "--fix", "--format", "json", str(path)])
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def _run(paths: list[Path], tiny: Path, cwd: Path) -> dict[str, dict[str, object]]:
    proc = subprocess.run([sys.executable, "-c", RUNNER, *map(str, paths)], capture_output=True, text=True,
                          cwd=cwd, env=_offline(tiny), timeout=540)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULTS ")), None)
    assert line is not None, proc.stderr[-3000:]
    return json.loads(line.removeprefix("RESULTS "))  # type: ignore[no-any-return]


def test_fix_leaves_no_in_scope_keyword_and_the_fixed_scripts_train(tiny: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before, after, run = [], [], []
    fixed_total = left_total = 0
    for old in CORPUS:
        original = _write(old, tmp_path / "unfixed", tiny)
        path = _write(old, tmp_path / "fixed", tiny)
        report = _fix(path, capsys)
        fixed = [i["keyword"] for i in report["fixed"] if i["via"] != "--fix"]  # type: ignore[attr-defined]
        left = [i["keyword"] for i in report["unfixed"]]  # type: ignore[attr-defined]
        assert (sorted(fixed), sorted(left)) == (sorted(old.fixed), sorted(old.left)), old.name
        fixed_total += len(fixed)
        left_total += len(left)
        if not old.left:
            before.append(original)
            after.append(path)
            run.append(old.name)
    assert len(run) >= 5 and (fixed_total, left_total) == (22, 1)
    results = _run(before + after, tiny, tmp_path)
    for name, original, path in zip(run, before, after, strict=True):
        was, now = results[str(original)], results[str(path)]
        assert not was["ok"] and str(was["error"]).startswith(("TypeError", "ImportError")), (name, was)
        assert now["ok"], (name, now, path.read_text(encoding="utf-8"))
        trained = now["trained"]
        assert trained and trained[-1][1] >= 1, (name, trained)  # type: ignore[index]
