"""Which tokens carry loss: a row rendered to text with the character spans of its response (no torch).

TRL masks the prompt of prompt/completion data by default since 0.18 (`completion_only_loss`,
https://huggingface.co/docs/trl/sft_trainer#train-on-completion-only) and offers `assistant_only_loss` for
conversations; users of the old `DataCollatorForCompletionOnlyLM` expect the same. Here:
instruction/input/output and prompt/completion rows train on the response only, `messages` rows on the
assistant turns only (the template's `{% generation %}` markers when it has them, else the turn boundaries
found by rendering prefixes of the conversation), `text` rows on everything. The EOS that ends a trained
response is trained too: a model that never sees it as a target never stops.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PROMPT = "### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
_GENERATION = re.compile(r"{%-?\s*generation\s*-?%}")


@dataclass(frozen=True)
class Rendered:
    """A row as text, the character spans that carry loss, and how it was split (for the plan's note)."""

    text: str
    spans: tuple[tuple[int, int], ...]
    how: str  # "response", "assistant turns (template prefixes)", "everything", ...
    special: bool = True  # add the tokenizer's special tokens (a chat template writes its own BOS)
    ids: tuple[int, ...] | None = None  # already tokenised (the template's generation markers)
    mask: tuple[bool, ...] | None = None
    # a chat template ends each turn with its own end-of-turn token (Gemma's <end_of_turn>, Llama 3's <|eot_id|>):
    # that is the stop token the model must learn; an EOS appended after it would be a format the template lacks
    append_eos: bool = True


@dataclass(frozen=True)
class Doc:
    """One tokenised row: ids and whether each one is a loss target."""

    ids: tuple[int, ...]
    trained: tuple[bool, ...]


def _template(tokenizer: Any) -> str:
    t = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    return t if isinstance(t, str) else ""


def _chat(tokenizer: Any, msgs: list[dict[str, Any]], **kw: Any) -> str:
    return str(tokenizer.apply_chat_template(msgs, tokenize=False, **kw))


def training_template(tokenizer: Any) -> str | None:
    """TRL's training version of the tokenizer's chat template (with generation markers), when TRL knows it.

    TRL ships prefix-preserving copies of common templates (Llama 3, Qwen, Gemma, ...) with `{% generation %}`
    markers for `assistant_only_loss` (trl.chat_template_utils.get_training_chat_template). None when the
    template already has markers, TRL is not installed, or it does not know the template.
    """
    template = _template(tokenizer)
    if not template or _GENERATION.search(template):
        return None
    try:
        from trl.chat_template_utils import get_training_chat_template
    except Exception:  # TRL not installed (or broken): the template's turn boundaries
        return None
    try:
        patched = get_training_chat_template(tokenizer)
    except Exception:  # a template TRL does not know
        return None
    return patched if isinstance(patched, str) and _GENERATION.search(patched) else None


def _assistant_spans(tokenizer: Any, msgs: list[dict[str, Any]], full: str,
                     kw: dict[str, Any]) -> tuple[list[tuple[int, int]], str]:
    """Assistant turns as character spans of `full`: from after the generation prompt to the end of the turn."""
    spans: list[tuple[int, int]] = []
    how = "assistant turns (template turn boundaries)"
    cursor = 0
    for i, m in enumerate(msgs):
        if m.get("role") != "assistant":
            continue
        try:
            head = _chat(tokenizer, msgs[:i], add_generation_prompt=True, **kw) if i else ""
            upto = _chat(tokenizer, msgs[: i + 1], **kw)
        except Exception:  # a template that refuses a partial conversation
            head, upto = "", ""
        if upto and full.startswith(upto) and upto.startswith(head) and len(head) >= cursor:
            spans.append((len(head), len(upto)))
            cursor = len(upto)
            continue
        # Templates that render earlier turns differently once later ones exist (e.g. Qwen3 drops old
        # reasoning) break the prefix property: fall back to the content itself, plus an EOS right after it.
        content = str(m.get("content", ""))
        at = full.find(content, cursor) if content else -1
        if at < 0:
            continue
        end = at + len(content)
        eos = getattr(tokenizer, "eos_token", None)
        if isinstance(eos, str) and eos:
            nxt = full.find(eos, end)
            if 0 <= nxt <= end + 8:
                end = nxt + len(eos)
        spans.append((at, end))
        cursor = end
        how = "assistant turns (content located in the rendered template)"
    return spans, how


def render(row: dict[str, Any], tokenizer: Any = None, train_on_prompt: bool = False,
           template: str | None = None) -> Rendered:
    """The row's text and the spans that carry loss; raises ValueError for a row of no known format.

    `template` replaces the tokenizer's chat template for masking (TRL's training version of it).
    """
    if "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and "content" in m for m in msgs):
            raise ValueError("'messages' must be a list of {role, content} objects")
        kw: dict[str, Any] = {"chat_template": template} if template else {}
        template = template or _template(tokenizer)
        if template:
            full = _chat(tokenizer, msgs, **kw)
            if train_on_prompt:
                return Rendered(full, ((0, len(full)),), "everything", special=False, append_eos=False)
            if _GENERATION.search(template):
                # the template marks what the assistant generates; transformers turns that into a token mask
                # (fast tokenizers only: https://huggingface.co/docs/transformers/chat_templating_writing)
                try:
                    out = tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True,
                                                        return_assistant_tokens_mask=True, **kw)
                    ids = tuple(int(x) for x in out["input_ids"])
                    mask = tuple(bool(x) for x in out["assistant_masks"])
                except (ValueError, KeyError, TypeError, NotImplementedError):
                    pass  # a slow tokenizer: the turn boundaries below
                else:
                    if len(ids) == len(mask) and any(mask):
                        how = "assistant turns (" + ("TRL's training template" if kw else "template") + \
                            " generation markers)"
                        return Rendered(full, (), how, False, ids, mask, append_eos=False)
            spans, how = _assistant_spans(tokenizer, msgs, full, kw)
            return Rendered(full, tuple(spans), how, special=False, append_eos=False)
        parts: list[str] = []
        spans_: list[tuple[int, int]] = []
        pos = 0
        for m in msgs:
            role = str(m.get("role", "user"))
            head = f"{role}: "
            body = str(m["content"])
            if role == "assistant" or train_on_prompt:
                spans_.append((pos + (0 if train_on_prompt else len(head)), pos + len(head) + len(body)))
            parts.append(head + body)
            pos += len(head) + len(body) + 1
        return Rendered("\n".join(parts), tuple(spans_), "everything" if train_on_prompt else "assistant turns")
    if "instruction" in row:
        inp = str(row.get("input") or "")
        prompt = PROMPT.format(instruction=row["instruction"], input_block=f"### Input:\n{inp}\n\n" if inp else "")
        return _pair(prompt, str(row.get("output", "")), train_on_prompt)
    if "prompt" in row and "completion" in row:
        if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str):
            raise ValueError("'prompt' and 'completion' must be strings (write conversations as 'messages')")
        return _pair(row["prompt"], row["completion"], train_on_prompt)
    if "text" in row:
        text = str(row["text"])
        return Rendered(text, ((0, len(text)),), "everything")
    raise ValueError("row has none of 'messages', 'instruction', 'prompt'/'completion', 'text' "
                     f"(keys: {', '.join(sorted(row)) or 'none'})")


def _pair(prompt: str, response: str, train_on_prompt: bool) -> Rendered:
    text = prompt + response
    start = 0 if train_on_prompt else len(prompt)
    return Rendered(text, ((start, len(text)),), "everything" if train_on_prompt else "response")


def _pieces(r: Rendered) -> list[tuple[str, bool]]:
    """The text cut at span edges: (piece, trained)."""
    cuts = sorted({0, len(r.text), *(x for s in r.spans for x in s)})
    return [(r.text[a:b], any(s <= a and b <= e for s, e in r.spans)) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def tokenize_rendered(r: Rendered, tokenizer: Any) -> Doc:
    """Token ids and their loss mask; a trained response's EOS is appended (and trained) when missing."""
    if r.ids is not None and r.mask is not None:
        ids, trained = list(r.ids), list(r.mask)
    else:
        try:
            # a fast tokenizer: one pass over the whole text, tokens mapped to characters by their offsets
            enc = tokenizer(r.text, add_special_tokens=r.special, return_offsets_mapping=True)
            ids = list(enc["input_ids"])
            offsets = enc["offset_mapping"]
            trained = [e > b and any(b < se and e > ss for ss, se in r.spans) for b, e in offsets]
        except (TypeError, NotImplementedError, KeyError):  # a slow tokenizer: piece by piece
            ids, trained = [], []
            for k, (piece, on) in enumerate(_pieces(r)):
                got = list(tokenizer(piece, add_special_tokens=r.special and k == 0)["input_ids"])
                ids += got
                trained += [on] * len(got)
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and r.append_eos:
        if not ids or ids[-1] != eos:
            ids.append(eos)
            trained.append(bool(trained) and trained[-1])  # the EOS ends the response it follows
        elif len(trained) > 1 and trained[-2]:
            trained[-1] = True  # the template's own EOS after a trained turn
    return Doc(tuple(ids), tuple(trained))


@dataclass(frozen=True)
class MaskStats:
    """What the masking did over a dataset: seen and trained tokens, rows without loss, EOS targets."""

    rows: int
    seen_tokens: int
    trained_tokens: int
    rows_without_loss: int
    eos_trained: int  # rows whose final EOS (or the template's end of turn) is a loss target
    how: tuple[str, ...]

    def describe(self) -> str:
        """One line for the plan, e.g. 'loss on response (38 % of 1,204 tokens); EOS trained in 32 of 32 rows'."""
        share = self.trained_tokens / max(self.seen_tokens, 1)
        line = (f"loss on {', '.join(self.how)}: {self.trained_tokens:,} of {self.seen_tokens:,} tokens "
                f"({share:.0%}); EOS trained in {self.eos_trained} of {self.rows} rows")
        if self.rows_without_loss:
            line += f"; {self.rows_without_loss} rows have no trained token (dropped)"
        return line


def docs_from(rows: Sequence[dict[str, Any]], tokenizer: Any, train_on_prompt: bool,
              source: str = "dataset") -> tuple[list[Doc], MaskStats]:
    """Every row rendered and tokenised with its loss mask; rows without a trained token are dropped."""
    from ..errors import ConfigError

    docs: list[Doc] = []
    how: list[str] = []
    chats = not train_on_prompt and any("messages" in row for row in rows)
    template = training_template(tokenizer) if chats else None  # imports TRL: only for conversations
    seen = trained = empty = eos_ok = 0
    eos = getattr(tokenizer, "eos_token_id", None)
    for n, row in enumerate(rows, 1):
        try:
            r = render(row, tokenizer, train_on_prompt, template)
        except ValueError as e:
            raise ConfigError(f"{source}: row {n}: {e}") from e
        d = tokenize_rendered(r, tokenizer)
        ends = bool(d.ids) and d.trained[-1] and (not r.append_eos or d.ids[-1] == eos)
        if r.how not in how:
            how.append(r.how)
        n_trained = sum(d.trained[1:])  # the first token is never a target
        if not n_trained:
            empty += 1
            continue
        seen += len(d.ids)
        trained += n_trained
        eos_ok += int(ends)
        docs.append(d)
    return docs, MaskStats(len(rows), seen, trained, empty, eos_ok, tuple(how))
