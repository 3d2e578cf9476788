"""Training data: JSONL rows (instruction/input/output, text, or chat messages) to packed token sequences."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

IGNORE_INDEX = -100
PROMPT = "### Instruction:\n{instruction}\n\n{input_block}### Response:\n{output}"


@dataclass(frozen=True)
class Example:
    """One tokenised training sequence; labels are IGNORE_INDEX where no loss is taken."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    position_ids: tuple[int, ...]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a JSONL file; a bad line is an error that names the file and line."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"dataset {p}: cannot read it ({e.strerror or e})") from e
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}:{n}: not valid JSON ({e.msg})") from e
        if not isinstance(row, dict):
            raise ConfigError(f"{p}:{n}: each line must be a JSON object, got {type(row).__name__}")
        rows.append(row)
    if not rows:
        raise ConfigError(f"dataset {p}: no rows")
    return rows


def _one(row: dict[str, Any], tokenizer: Any = None) -> str:
    if "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and "content" in m for m in msgs):
            raise ValueError("'messages' must be a list of {role, content} objects")
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            return str(tokenizer.apply_chat_template(msgs, tokenize=False))
        return "\n".join(f"{m.get('role', 'user')}: {m['content']}" for m in msgs)
    if "instruction" in row:
        inp = str(row.get("input") or "")
        return PROMPT.format(instruction=row["instruction"], output=row.get("output", ""),
                             input_block=f"### Input:\n{inp}\n\n" if inp else "")
    if "text" in row:
        return str(row["text"])
    raise ValueError(f"row has none of 'messages', 'instruction', 'text' (keys: {', '.join(sorted(row)) or 'none'})")


def format_examples(batch: dict[str, Any], tokenizer: Any = None) -> str | list[str]:
    """Format one row or a column-batched dict of rows ({'instruction': [...], ...}); seed 002, issue 5."""
    columns = [v for v in batch.values() if isinstance(v, list)]
    batched = bool(batch) and len(columns) == len(batch) and "messages" not in batch
    if not batched and "messages" in batch and batch["messages"] and isinstance(batch["messages"][0], list):
        batched = True  # a batch of conversations: a list of message lists
    if not batched:
        return _one(batch, tokenizer)
    size = len(columns[0])
    return [_one({k: v[i] for k, v in batch.items()}, tokenizer) for i in range(size)]


def texts_from(rows: Sequence[dict[str, Any]], tokenizer: Any, source: str = "dataset") -> list[str]:
    """The formatted text of every row, with the row number in any error."""
    out = []
    for n, row in enumerate(rows, 1):
        try:
            out.append(str(_one(row, tokenizer)))
        except ValueError as e:
            raise ConfigError(f"{source}: row {n}: {e}") from e
    return out


def tokenize(texts: Sequence[str], tokenizer: Any, seq_len: int, packing: bool) -> list[Example]:
    """Token sequences of at most seq_len: packed end to end (positions reset per example), or one per text."""
    eos = tokenizer.eos_token_id
    docs = []
    for t in texts:
        doc = list(tokenizer(t, add_special_tokens=True)["input_ids"])
        if eos is not None and (not doc or doc[-1] != eos):
            doc.append(eos)
        docs.append(doc[: seq_len] if not packing else doc)
    if not packing:
        return [Example(tuple(d), tuple(d), tuple(range(len(d)))) for d in docs if len(d) > 1]
    out: list[Example] = []
    ids: list[int] = []
    labels: list[int] = []
    pos: list[int] = []
    for d in docs:
        p = 0  # positions restart with each example, and where a long example is cut
        for k, tok in enumerate(d):
            ids.append(tok)
            # the first token of an example is never a target of the previous one
            labels.append(IGNORE_INDEX if k == 0 else tok)
            pos.append(p)
            p += 1
            if len(ids) == seq_len:
                out.append(Example(tuple(ids), tuple(labels), tuple(pos)))
                ids, labels, pos, p = [], [], [], 0
    if len(ids) > 1:
        out.append(Example(tuple(ids), tuple(labels), tuple(pos)))
    return out


def batches(examples: Sequence[Example], batch: int, seed: int, epoch: int) -> Iterator[list[Example]]:
    """Shuffled batches of one epoch, the same order for the same seed and epoch (so resume can skip)."""
    order = list(range(len(examples)))
    random.Random(seed * 1000003 + epoch).shuffle(order)
    for i in range(0, len(order) - batch + 1 if len(order) >= batch else 1, batch):
        yield [examples[j] for j in order[i:i + batch]]


def collate(group: Sequence[Example], pad_id: int) -> dict[str, list[list[int]]]:
    """Right-padded lists (the causal mask keeps real tokens from seeing the padding; pads carry no loss)."""
    width = max(len(e.input_ids) for e in group)
    ids, labels, pos = [], [], []
    for e in group:
        pad = width - len(e.input_ids)
        ids.append(list(e.input_ids) + [pad_id] * pad)
        labels.append(list(e.labels) + [IGNORE_INDEX] * pad)
        pos.append(list(e.position_ids) + list(range(len(e.position_ids), width)))
    return {"input_ids": ids, "labels": labels, "position_ids": pos}
