"""The tiny model of each family the probes build: the family's real config and architecture class, small dims.

One table, so "certified for Qwen" exercises a Qwen (issue 12): a matrix picks the family with the typed
probe param `family = "qwen2"`. Every family shares the same small shape (2 layers, hidden 64, 4 heads, 2 KV
heads, vocabulary 256) and random weights; the names are looked up in transformers from this table only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal["llama", "qwen2", "qwen3", "gemma3", "mistral", "phi3"]

# config.json of meta-llama/Llama-3.1-8B(-Instruct): the dict that transformers < 4.43 rejects
LLAMA31_ROPE = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192, "rope_type": "llama3"}

_SHAPE: dict[str, Any] = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                              pad_token_id=0, bos_token_id=1, eos_token_id=2)
_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class FamilySpec:
    """How to build a family's tiny model: its transformers config and model classes, and its attention layers."""

    config: str  # class name in transformers
    model: str  # the architecture class, as `architectures` in a config.json names it
    model_type: str  # what the config reports
    extra: dict[str, Any] = field(default_factory=dict)  # family-specific config keywords
    lora_targets: tuple[str, ...] = _ATTENTION


FAMILIES: dict[str, FamilySpec] = {
    "llama": FamilySpec("LlamaConfig", "LlamaForCausalLM", "llama",
                        {"max_position_embeddings": 131072, "rope_theta": 500000.0, "rope_scaling": LLAMA31_ROPE}),
    "qwen2": FamilySpec("Qwen2Config", "Qwen2ForCausalLM", "qwen2", {"max_position_embeddings": 512}),
    "qwen3": FamilySpec("Qwen3Config", "Qwen3ForCausalLM", "qwen3", {"max_position_embeddings": 512, "head_dim": 16}),
    "gemma3": FamilySpec("Gemma3TextConfig", "Gemma3ForCausalLM", "gemma3_text",
                         {"max_position_embeddings": 512, "head_dim": 16, "sliding_window": 32}),
    "mistral": FamilySpec("MistralConfig", "MistralForCausalLM", "mistral",
                          {"max_position_embeddings": 512, "sliding_window": None}),
    # Phi-3 fuses q, k and v into one projection
    "phi3": FamilySpec("Phi3Config", "Phi3ForCausalLM", "phi3", {"max_position_embeddings": 512},
                       ("qkv_proj", "o_proj")),
}


def tiny_config(family: str = "llama", **overrides: Any) -> Any:
    """The tiny config of `family` (a key of FAMILIES); raises ValueError for another name."""
    import transformers

    spec = FAMILIES.get(family)
    if spec is None:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    kw = {**_SHAPE, **spec.extra, **overrides}
    if "rope_scaling" in kw and kw["rope_scaling"] is not None:
        kw["rope_scaling"] = dict(kw["rope_scaling"])
    return getattr(transformers, spec.config)(**kw)


def model_class(family: str) -> Any:
    """The family's architecture class from transformers (e.g. Qwen2ForCausalLM)."""
    import transformers

    return getattr(transformers, FAMILIES[family].model)


def tiny_model(family: str = "llama", **overrides: Any) -> Any:
    """A tiny randomly initialised model of `family`, built from its own config and architecture class."""
    return model_class(family)(tiny_config(family, **overrides))
