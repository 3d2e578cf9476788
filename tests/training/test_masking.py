"""Loss masking: only responses and assistant turns are targets, their EOS included; --train-on-prompt trains all."""

from __future__ import annotations

import pytest

from envdoctor.training.data import IGNORE_INDEX, collate, pack
from envdoctor.training.masking import docs_from, render, tokenize_rendered

# a Llama-3-like template without generation markers: a header per turn, "</s>" ends each turn
TURNS = ("{% for m in messages %}<| {{ m.role }} |> {{ m.content }} </s> {% endfor %}"
         "{% if add_generation_prompt %}<| assistant |> {% endif %}")
# the same template with the assistant's part marked (transformers' return_assistant_tokens_mask)
MARKED = ("{% for m in messages %}<| {{ m.role }} |> {% if m.role == 'assistant' %}{% generation %}"
          "{{ m.content }} </s>{% endgeneration %}{% else %}{{ m.content }} </s>{% endif %} {% endfor %}")
CHAT = [{"role": "user", "content": "hi 1"}, {"role": "assistant", "content": "hello 1"},
        {"role": "user", "content": "hi 2"}, {"role": "assistant", "content": "hello 2"}]


def _trained_words(tok, row, train_on_prompt=False):  # type: ignore[no-untyped-def]
    d = tokenize_rendered(render(row, tok, train_on_prompt), tok)
    return [tok.convert_ids_to_tokens(i) for i, on in zip(d.ids, d.trained, strict=True) if on]


@pytest.mark.parametrize(("row", "expected"), [
    pytest.param({"instruction": "add 1 and 2", "input": "numbers 1", "output": "3"}, ["3", "</s>"], id="instruction"),
    pytest.param({"prompt": "add 1 and 2 =", "completion": "3"}, ["3", "</s>"], id="prompt-completion"),
    pytest.param({"messages": CHAT}, ["hello", "1", "hello", "2", "</s>"], id="messages-no-template"),
])
def test_only_the_response_is_trained(row, expected, make_tok):  # type: ignore[no-untyped-def]
    assert _trained_words(make_tok(), row) == expected


def test_text_rows_and_train_on_prompt_train_everything(make_tok):
    tok = make_tok()
    row = {"instruction": "add 1 and 2", "input": "", "output": "3"}
    words = _trained_words(tok, row, train_on_prompt=True)
    assert words[:2] == ["###", "Instruction"] and words[-2:] == ["3", "</s>"]
    assert _trained_words(tok, {"text": "the quick fox"}) == ["the", "quick", "fox", "</s>"]


@pytest.mark.parametrize("template", [pytest.param(TURNS, id="turn-boundaries"),
                                      pytest.param(MARKED, id="generation-markers")])
def test_chat_template_trains_assistant_turns_and_their_end_of_turn(template, make_tok):  # type: ignore[no-untyped-def]
    tok = make_tok(chat_template=template)
    r = render({"messages": CHAT}, tok)
    assert ("generation markers" in r.how) == (template is MARKED)
    assert _trained_words(tok, {"messages": CHAT}) == ["hello", "1", "</s>", "hello", "2", "</s>"]


def test_pad_equal_to_eos_keeps_the_eos_label(make_tok):
    """pad == eos: collation pads by position, so the trained EOS stays a label (HF's collator would drop it)."""
    tok = make_tok(pad="</s>")
    assert tok.pad_token_id == tok.eos_token_id
    docs, stats = docs_from([{"prompt": "add 1 and 2 =", "completion": "3"}, {"text": "the quick brown fox"}],
                            tok, train_on_prompt=False)
    batch = collate(pack(docs, 32, packing=False), tok.pad_token_id)
    eos = tok.eos_token_id
    assert [row.count(eos) for row in batch["labels"]] == [1, 1]
    assert stats.eos_trained == 2 and "EOS trained in 2 of 2 rows" in stats.describe()
    assert all(lab == IGNORE_INDEX for lab in batch["labels"][0][len(docs[0].ids):])  # the padding


def test_mask_stats_and_rows_without_loss(make_tok):
    tok = make_tok()
    rows = [{"instruction": "add 1 and 2", "output": "3"}, {"messages": [{"role": "user", "content": "hi 1"}]}]
    docs, stats = docs_from(rows, tok, train_on_prompt=False)
    assert len(docs) == 1 and stats.rows_without_loss == 1 and stats.trained_tokens == 2
    assert "no trained token" in stats.describe()
    _, every = docs_from(rows, tok, train_on_prompt=True)
    assert every.trained_tokens == every.seen_tokens - 2  # all but each row's first token


class SlowTok:
    """A tokenizer without offsets (a slow one): the text is tokenised piece by piece at span edges."""

    eos_token_id = 0

    def __call__(self, text, add_special_tokens=True):  # type: ignore[no-untyped-def]
        return {"input_ids": [len(w) for w in text.split()]}


def test_slow_tokenizer_falls_back_to_pieces():
    d = tokenize_rendered(render({"prompt": "aa bbb ", "completion": "cccc"}, None), SlowTok())
    assert d.ids == (2, 3, 4, 0) and d.trained == (False, False, True, True)


def test_template_rows_end_on_the_templates_end_of_turn(make_tok):
    """Gemma-like: a turn ends with its own marker ("<| user |>" here), trained, and no EOS is appended."""
    template = ("{% for m in messages %}<| {{ m.role }} |> {{ m.content }} <| user |> {% endfor %}"
                "{% if add_generation_prompt %}<| assistant |> {% endif %}")
    tok = make_tok(chat_template=template)
    docs, stats = docs_from([{"messages": CHAT}], tok, train_on_prompt=False)
    words = tok.convert_ids_to_tokens(list(docs[0].ids))
    assert words[-3:] == ["<|", "user", "|>"] and "</s>" not in words
    assert stats.eos_trained == 1


def test_trl_training_template_supplies_generation_markers(make_tok):
    """A template TRL knows (Llama 3 here) is masked through TRL's training copy with generation markers."""
    pytest.importorskip("trl")
    from trl import chat_template_utils as ctu

    tok = make_tok(chat_template=ctu.llama3_chat_template)
    from envdoctor.training.masking import training_template

    patched = training_template(tok)
    assert patched is not None and "generation" in patched
    docs, stats = docs_from([{"messages": CHAT}], tok, train_on_prompt=False)
    assert stats.how == ("assistant turns (TRL's training template generation markers)",)
    assert 0 < stats.trained_tokens < stats.seen_tokens
    assert training_template(make_tok(chat_template=TURNS)) is None  # unknown to TRL: the turn boundaries
