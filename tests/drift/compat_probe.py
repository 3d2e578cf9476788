"""Run the compat shims for real in whatever interpreter runs this script; print what they built as JSON.

Used by test_compat.py with the dev environment (new transformers/TRL) and with an older pair in a venv.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import warnings


def tiny_model_and_tokenizer():  # type: ignore[no-untyped-def]
    """A 1-layer random Llama and a word-level tokenizer, built locally (no hub downloads)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "<s>", "</s>", "hello", "world", "fine", "tune", "me"]
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3)
    return LlamaForCausalLM(config), tokenizer


def main() -> dict[str, object]:
    import transformers
    import trl
    from datasets import Dataset

    from envdoctor import CompatError, compat
    from envdoctor.compat import CompatWarning

    out: dict[str, object] = {"transformers": transformers.__version__, "trl": trl.__version__}
    out_dir = tempfile.mkdtemp()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = compat.training_arguments(output_dir=out_dir, evaluation_strategy="steps", eval_steps=5, use_cpu=True)
        out["old_name_eval"] = str(getattr(a, "eval_strategy", getattr(a, "evaluation_strategy", None)))
        a2 = compat.training_arguments(output_dir=out_dir, evaluation_strategy="steps", eval_steps=5, use_cpu=True)
        out["same_twice"] = str(a2.eval_strategy) == str(a.eval_strategy)
        b = compat.training_arguments(output_dir=out_dir, eval_strategy="no", use_cpu=True)
        out["new_name_eval"] = str(b.eval_strategy)
        c = compat.sft_config(output_dir=out_dir, max_length=48, use_cpu=True, bf16=False)
        out["sft_config_new_name"] = {k: getattr(c, k, None) for k in ("max_length", "max_seq_length")}
        d = compat.sft_config(output_dir=out_dir, max_seq_length=40, use_cpu=True, bf16=False)
        out["sft_config_old_name"] = {k: getattr(d, k, None) for k in ("max_length", "max_seq_length")}

        model, tok = tiny_model_and_tokenizer()
        ds = Dataset.from_dict({"text": ["hello world fine tune me"] * 4})
        cfg = compat.sft_config(output_dir=out_dir, use_cpu=True, bf16=False, max_steps=1, report_to=[],
                                per_device_train_batch_size=2)
        t = compat.sft_trainer(model=model, args=cfg, train_dataset=ds, tokenizer=tok, max_seq_length=32,
                               dataset_text_field="text")
        out["sft_trainer_moved"] = {k: getattr(t.args, k, None) for k in ("max_length", "max_seq_length",
                                                                           "dataset_text_field")}
        out["sft_trainer_args_type"] = type(t.args).__name__
        out["train_loss_finite"] = math.isfinite(t.train().training_loss)
        # the seeds' own shape: a TrainingArguments (with a deprecated alias set) plus max_seq_length on SFTTrainer
        ta = compat.training_arguments(output_dir=out_dir, use_cpu=True, max_steps=1, report_to=[], learning_rate=1e-3,
                                       per_device_train_batch_size=2, gradient_checkpointing=False)
        t2 = compat.sft_trainer(model=model, args=ta, train_dataset=ds, tokenizer=tok, max_seq_length=24,
                                dataset_text_field="text")
        out["from_training_args"] = {"type": type(t2.args).__name__, "learning_rate": t2.args.learning_rate,
                                     **{k: getattr(t2.args, k, None) for k in ("max_length", "max_seq_length")}}
        tr = compat.trainer(model=model, args=b, tokenizer=tok)
        out["trainer_processing_class"] = type(getattr(tr, "processing_class", None)).__name__
        try:
            compat.training_arguments(output_dir=out_dir, save_safetensors=False, use_cpu=True)
            out["removed_keyword"] = "accepted"
        except CompatError as e:
            out["removed_keyword"] = f"CompatError: {e}"
        dropped = compat.training_arguments(output_dir=out_dir, overwrite_output_dir=True, use_cpu=True)
        out["dropped_keyword"] = getattr(dropped, "overwrite_output_dir", "gone")
        grouped = compat.training_arguments(output_dir=out_dir, group_by_length=True, use_cpu=True)
        out["boolean_meant"] = str(getattr(grouped, "train_sampling_strategy", None) or
                                   getattr(grouped, "group_by_length", None))
        try:
            compat.training_arguments(output_dir=out_dir, evaluaton_strategy="no")
            out["typo"] = "accepted"
        except CompatError as e:
            out["typo"] = f"CompatError: {e}"
    out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, CompatWarning)]
    return out


if __name__ == "__main__":
    result = main()
    with open(sys.argv[1], "w", encoding="utf-8") as f:  # stdout carries the trainers' own logging
        json.dump(result, f)
