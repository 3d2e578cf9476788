"""Training data: JSONL rows (instruction/input/output, text, or chat messages) to packed token sequences."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .masking import Doc

IGNORE_INDEX = -100


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
    from .masking import render

    return render(row, tokenizer, train_on_prompt=True).text


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


def tokenize(texts: Sequence[str], tokenizer: Any, seq_len: int, packing: bool) -> list[Example]:
    """Token sequences of at most seq_len, every token trained: packed end to end, or one per text."""
    from .masking import Rendered, tokenize_rendered

    return pack([tokenize_rendered(Rendered(t, ((0, len(t)),), "everything"), tokenizer) for t in texts],
                seq_len, packing)


def pack(docs: Sequence[Doc], seq_len: int, packing: bool) -> list[Example]:
    """Examples of at most seq_len tokens: packed end to end (positions reset per doc), or one per doc (cut).

    A token's label is itself where it is trained, else IGNORE_INDEX; the first token of a doc is never a
    target (in a pack it would be predicted from the previous doc).
    """
    def labels_of(d: Doc) -> list[int]:
        return [tok if (k > 0 and on) else IGNORE_INDEX for k, (tok, on) in enumerate(zip(d.ids, d.trained, strict=True))]

    if not packing:
        out = []
        for d in docs:
            ids, labels = list(d.ids[:seq_len]), labels_of(d)[:seq_len]
            if len(ids) > 1 and any(lab != IGNORE_INDEX for lab in labels):
                out.append(Example(tuple(ids), tuple(labels), tuple(range(len(ids)))))
        return out
    packed: list[Example] = []
    ids_: list[int] = []
    labs: list[int] = []
    pos: list[int] = []
    for d in docs:
        p = 0  # positions restart with each example, and where a long example is cut
        for tok, lab in zip(d.ids, labels_of(d), strict=True):
            ids_.append(tok)
            labs.append(lab if p > 0 else IGNORE_INDEX)
            pos.append(p)
            p += 1
            if len(ids_) == seq_len:
                packed.append(Example(tuple(ids_), tuple(labs), tuple(pos)))
                ids_, labs, pos, p = [], [], [], 0
    if len(ids_) > 1:
        packed.append(Example(tuple(ids_), tuple(labs), tuple(pos)))
    return [e for e in packed if any(lab != IGNORE_INDEX for lab in e.labels)]


def split_rows(rows: Sequence[dict[str, Any]], fraction: float, seed: int) -> tuple[list[dict[str, Any]],
                                                                                list[dict[str, Any]]]:
    """(train, eval): a seeded random `fraction` of the rows held out (at least one when fraction > 0)."""
    if fraction <= 0:
        return list(rows), []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
    held = set(order[:n])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def batches(examples: Sequence[Example], batch: int, seed: int, epoch: int) -> Iterator[list[Example]]:
    """Shuffled batches of one epoch, the same order for the same seed and epoch (so resume can skip)."""
    order = list(range(len(examples)))
    random.Random(seed * 1000003 + epoch).shuffle(order)
    for i in range(0, len(order) - batch + 1 if len(order) >= batch else 1, batch):
        yield [examples[j] for j in order[i:i + batch]]


def cpu_tensors(group: Sequence[Example], pad_id: int, width: int | None = None) -> dict[str, Any]:
    """The collated micro-batch as CPU int64 tensors (the host's share of data loading)."""
    import torch

    return {k: torch.tensor(v) for k, v in collate(group, pad_id, width).items()}


def collate(group: Sequence[Example], pad_id: int, width: int | None = None) -> dict[str, list[list[int]]]:
    """Right-padded lists (the causal mask keeps real tokens from seeing the padding; pads carry no loss), to the
    longest row or to `width` (a fixed shape, for a replayed CUDA graph)."""
    width = max([len(e.input_ids) for e in group] + [width or 0])
    ids, labels, pos = [], [], []
    for e in group:
        pad = width - len(e.input_ids)
        ids.append(list(e.input_ids) + [pad_id] * pad)
        labels.append(list(e.labels) + [IGNORE_INDEX] * pad)
        pos.append(list(e.position_ids) + list(range(len(e.position_ids), width)))
    return {"input_ids": ids, "labels": labels, "position_ids": pos}
