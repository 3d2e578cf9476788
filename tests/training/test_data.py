"""JSONL formats, batched and single formatting (seed 002, issue 5), and packing."""

from __future__ import annotations

import pytest

from envdoctor.errors import ConfigError
from envdoctor.training.data import IGNORE_INDEX, format_examples, read_jsonl, tokenize


class ChatTok:
    chat_template = "x"

    def apply_chat_template(self, msgs, tokenize=False):
        return "".join(f"<{m['role']}>{m['content']}" for m in msgs)


class WordTok:
    eos_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [len(w) for w in text.split()]}


def test_formats_single_and_batched():
    one = {"instruction": "add", "input": "1 2", "output": "3"}
    text = format_examples(one)
    assert "### Instruction:\nadd" in text and "### Input:\n1 2" in text and text.endswith("### Response:\n3")
    batch = {"instruction": ["a", "b"], "input": ["", "x"], "output": ["1", "2"]}
    out = format_examples(batch)
    assert isinstance(out, list) and len(out) == 2 and "### Input" not in out[0] and "### Input:\nx" in out[1]
    assert format_examples({"text": ["p", "q"]}) == ["p", "q"]
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert format_examples({"messages": msgs}, ChatTok()) == "<user>hi<assistant>yo"
    assert format_examples({"messages": [msgs, msgs]}, ChatTok()) == ["<user>hi<assistant>yo"] * 2
    assert format_examples({"messages": msgs}) == "user: hi\nassistant: yo"


def test_packing_resets_positions_and_masks_boundaries():
    ex = tokenize(["aa bbb", "c dd eee"], WordTok(), seq_len=4, packing=True)
    assert [e.input_ids for e in ex] == [(2, 3, 0, 1), (2, 3, 0)]
    assert ex[0].position_ids == (0, 1, 2, 0) and ex[1].position_ids == (0, 1, 2)
    assert ex[0].labels == (IGNORE_INDEX, 3, 0, IGNORE_INDEX)
    plain = tokenize(["aa bbb", "c dd eee ffff gg"], WordTok(), seq_len=4, packing=False)
    assert [e.input_ids for e in plain] == [(2, 3, 0), (1, 2, 3, 4)]


def test_bad_rows_name_file_and_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(ConfigError, match=r"d.jsonl:2: not valid JSON"):
        read_jsonl(f)
    f.write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        read_jsonl(f)
