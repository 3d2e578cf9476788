"""`envdoctor train qlora` on a random checkpoint of another family's real shape (GPU only), e.g. Qwen2.5-7B.

    python benchmarks/bench_family.py qwen2.5-7b [--src DIR] [--case seed|b4] [--runs N]

Makes the checkpoint once (random bf16 weights from the family's own config class, on the GPU) next to
bench_vs_trl's Llama checkpoint, with a byte-level BPE trained on bench_vs_trl's data (run `bench_vs_trl.py` or
`device_steps.py ... make` first), then runs the CLI with bench_vs_trl's settings for the case. `--src` runs another checkout's
`src` (an A/B of two commits on the same checkpoint). Prints one JSON record a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_vs_trl as vs  # noqa: E402

# config.json of Qwen/Qwen2.5-7B (q/k/v carry a bias; sliding window off)
SHAPES = {"qwen2.5-7b": ("Qwen2Config", dict(
    vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
    num_key_value_heads=4, max_position_embeddings=32768, rope_theta=1000000.0, sliding_window=131072,
    use_sliding_window=False, tie_word_embeddings=False, rms_norm_eps=1e-6))}


def make(name: str) -> str:
    import torch
    import transformers

    path = os.path.join(vs.TMP, name)
    if os.path.exists(os.path.join(path, "config.json")):
        return path
    if not os.path.exists(vs.DATA):
        raise SystemExit(f"no data at {vs.DATA}: run `python benchmarks/device_steps.py 60 make` first")
    cls, kw = SHAPES[name]
    cfg = getattr(transformers, cls)(**kw)
    t = time.time()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(path)
    del model
    torch.set_default_dtype(torch.float32)
    torch.cuda.empty_cache()
    tokenizer_for(path)
    print(f"made random {name} in {time.time() - t:.0f}s", file=sys.stderr, flush=True)
    return path


def tokenizer_for(path: str) -> None:
    """A byte-level BPE over the data's words, saved into `path`. Not the Llama folder's word-level tokenizer:
    transformers 5 builds the model type's own tokenizer class from tokenizer.json whatever tokenizer_config
    names (https://github.com/huggingface/transformers/pull/44606), and Qwen2Tokenizer encodes a word-level
    vocabulary to nothing (the trainer stops: "its tokenizer (Qwen2Tokenizer) turned all 600 rows ... into no
    tokens"). Qwen's pre-tokenizer splits digits, so a word here is 2-4 tokens (tokens/s counts tokens)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    with open(vs.DATA, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=2000, min_frequency=1,
                            special_tokens=["<pad>", "<s>", "</s>", "<unk>"], show_progress=False)
    PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("--src", default=str(ROOT / "src"), help="a checkout's src folder to run (default: this one's)")
    ap.add_argument("--case", choices=sorted(vs.CASES), default="seed")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    vs.MODEL = make(args.shape)
    vs.ROOT = Path(args.src).resolve().parent  # run_ours puts ROOT/src first on PYTHONPATH
    for _ in range(args.runs):
        rec = vs.run_ours(args.case)
        rec.update(shape=args.shape, src=args.src)
        print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
