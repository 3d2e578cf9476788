"""Fixtures for the trainer tests: a tiny random Llama and tokenizer built here, and a JSONL of every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROWS = (
    [{"instruction": f"add {i} and {i + 1}", "input": "" if i % 2 else f"numbers {i}", "output": f"{2 * i + 1}"}
     for i in range(16)]
    + [{"text": f"the quick brown fox {i} jumps over the lazy dog"} for i in range(8)]
    + [{"messages": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": f"hello {i}"}]}
       for i in range(8)]
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_tokenizer(pad: str = "<pad>", chat_template: str | None = None):  # type: ignore[no-untyped-def]
    """A word-level fast tokenizer over ROWS' words (BOS <s>, EOS </s>), optionally with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [json.dumps(r) for r in ROWS] + ["### Instruction: Input: Response: user: assistant: <| |>"]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token=pad, bos_token="<s>",
                                   eos_token="</s>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-layer random Llama saved with save_pretrained, a word-level tokenizer next to it, and a dataset."""
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("tiny")
    data = write_jsonl(root / "data.jsonl", ROWS)
    fast = make_tokenizer()
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id)
    model_dir = root / "model"
    LlamaForCausalLM(cfg).save_pretrained(model_dir)
    fast.save_pretrained(model_dir)
    return {"model": model_dir, "data": data, "root": root}


@pytest.fixture
def make_tok():  # type: ignore[no-untyped-def]
    """make_tokenizer, as a fixture (test modules cannot import a conftest by name: there are several)."""
    return make_tokenizer


@pytest.fixture
def jsonl():  # type: ignore[no-untyped-def]
    """write_jsonl, as a fixture."""
    return write_jsonl


@pytest.fixture
def skip_guard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The trainer's gate skipped (ENVDOCTOR_SKIP_GUARD=1), the matrix cache in the test's folder."""
    monkeypatch.setenv("ENVDOCTOR_SKIP_GUARD", "1")
    monkeypatch.setenv("ENVDOCTOR_CACHE_DIR", str(tmp_path / "cache"))
