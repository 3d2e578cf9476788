"""`envdoctor train qlora` on the GPU for each model family the probes know (Llama, Qwen2, Qwen3, Gemma3, Mistral,
Phi3): a tiny random model of the family's own architecture trains through the CLI with the fast path (lean NF4,
fused LoRA, shared-input groups, the Triton loss, varlen attention, CUDA graphs where they apply), and its losses
follow the plain path's (`--fast off`: peft's modules, HF's loss) from the same weights and data.

Skipped where torch sees no CUDA device (CI: the families' CPU path is tests/certify/test_families.py); run on
the GPU machine with `python -m pytest tests/training/test_gpu_families.py`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from envdoctor._certify.probes.family import FAMILIES, tiny_model
from envdoctor._cli import main

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU trainer: needs a CUDA device")


def _run(model: Path, data: Path, out: Path, family: str, *extra: str) -> list[float]:
    """The run's logged training losses, one a step."""
    code = main(["train", "qlora", "--model", str(model), "--dataset", str(data), "--output", str(out),
                 "--seq-len", "64", "--batch-size", "2", "--effective-batch", "2", "--max-steps", "4",
                 "--lora-r", "8", "--lora-dropout", "0", "--lora-targets", ",".join(FAMILIES[family].lora_targets),
                 "--save-steps", "0", "--lr", "1e-3", *extra])
    assert code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_trains_on_the_fast_path_as_on_the_plain_one(family, tmp_path, skip_guard, capsys, make_tok,
                                                                   jsonl):
    pytest.importorskip("bitsandbytes")

    tok = make_tok()
    torch.manual_seed(0)
    model = tiny_model(family, vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id)
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    data = jsonl(tmp_path / "data.jsonl", [{"text": " ".join(f"the quick brown fox {i} jumps over the lazy dog"
                                                           for _ in range(3))} for i in range(16)])
    fast = _run(tmp_path / "model", data, tmp_path / "fast", family)
    err = capsys.readouterr().err
    notes = [line.strip() for line in err.splitlines() if any(k in line for k in (
        "lean NF4", "varlen", "CUDA graph", "fused loss", "liger", "shared-input"))]
    print(family, notes)  # what the fast path did for this family (pytest -s shows it)
    plain = _run(tmp_path / "model", data, tmp_path / "plain", family, "--fast", "off")
    assert len(fast) == len(plain) == 4 and all(math.isfinite(x) for x in fast + plain)
    assert abs(fast[0] - plain[0]) <= 5e-3 * plain[0], (fast, plain)  # the same weights and batch: bf16 apart
    assert fast[-1] < fast[0]  # it learns
    assert abs(fast[-1] - plain[-1]) <= 3e-2 * plain[-1], (fast, plain)
    wrapped = 2 * len(FAMILIES[family].lora_targets)  # two layers: every adapted linear on the lean path (Qwen2's
    assert any(f"lean NF4 path on {wrapped} LoRA" in n for n in notes), notes  # biased q/k/v included)
