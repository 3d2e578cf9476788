"""Tier 2, device-independent: LlamaConfig takes the Llama-3.1 rope dict, and the matrix's training keywords construct."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ..params import Identifier, MatrixFacts, PlainScalar, PlainValue, ProbeParams, plain_keywords
from ..registry import Outcome, ProbeContext, register_probe
from .family import FAMILIES, LLAMA31_ROPE, Family, model_class, tiny_config


def tiny_llama_config(rope: dict[str, Any] | None = None, **overrides: Any) -> Any:
    """A tiny random Llama config (2 layers, hidden 64) with the Llama-3.1 rope dict by default."""
    return tiny_config("llama", rope_scaling=dict(rope or LLAMA31_ROPE), **overrides)


class RopeParams(ProbeParams):
    """Params of llama31-rope."""

    rope_scaling: dict[Identifier, PlainScalar] | None = Field(
        None, description="The rope_scaling dict of the model's config.json (default: Llama-3.1's).")


@register_probe("llama31-rope", 2, gpu="optional", timeout=240.0, params=RopeParams)
def llama31_rope(ctx: ProbeContext) -> Outcome:
    """LlamaConfig accepts the Llama-3.1 rope_scaling dict and a tiny model runs a forward pass with it."""
    import torch
    from transformers import LlamaForCausalLM

    rope = dict(RopeParams.model_validate(ctx.params).rope_scaling or LLAMA31_ROPE)
    cfg = tiny_llama_config(rope)  # transformers 4.41 raises ValueError here ("two fields, type and factor")
    torch.manual_seed(0)
    model: Any = LlamaForCausalLM(cfg)
    model = model.to(ctx.device).eval()
    rotary = getattr(model.model, "rotary_emb", None)
    rope_type = getattr(rotary, "rope_type", None)
    if rotary is not None and rope_type not in (None, rope.get("rope_type")):
        return Outcome.failed(f"the model uses rope_type {rope_type!r}, not {rope.get('rope_type')!r}")
    ids = torch.randint(0, cfg.vocab_size, (1, 32), device=ctx.device)
    with torch.no_grad():
        logits = model(ids).logits
    if not torch.isfinite(logits).all():
        return Outcome.failed("a forward pass with the llama3 rope produced non-finite logits")
    return Outcome.passed(f"LlamaConfig takes rope_type {rope.get('rope_type')!r} (factor {rope.get('factor')}); "
                          f"forward pass on {ctx.device} is finite", rope_type=rope_type)


class FamilyParams(ProbeParams):
    """Params of family-forward."""

    family: Family = Field("llama", description="The model family: " + ", ".join(FAMILIES))


@register_probe("family-forward", 2, gpu="optional", timeout=240.0, params=FamilyParams)
def family_forward(ctx: ProbeContext) -> Outcome:
    """The family's config and architecture class exist in this transformers and a tiny model's forward is finite."""
    import torch

    family = FamilyParams.model_validate(ctx.params).family
    try:
        cfg, cls = tiny_config(family), model_class(family)
    except AttributeError as e:  # a transformers older than the family: "KeyError: 'qwen3'" in users' threads
        return Outcome.failed(f"this transformers has no {family} model: {e}")
    torch.manual_seed(0)
    model: Any = cls(cfg).to(ctx.device).eval()
    ids = torch.randint(0, cfg.vocab_size, (1, 32), device=ctx.device)
    with torch.no_grad():
        logits = model(ids).logits
    if not torch.isfinite(logits).all():
        return Outcome.failed(f"a forward pass of a tiny {cls.__name__} produced non-finite logits")
    return Outcome.passed(f"{cls.__name__} (model_type {cfg.model_type!r}): forward pass on {ctx.device} is finite",
                          architecture=cls.__name__, model_type=cfg.model_type)


def _training_kwargs(ctx: ProbeContext, workdir: str) -> dict[str, Any]:
    cuda = ctx.device == "cuda"
    cc = ctx.gpu.get("compute_capability") or "0.0"
    bf16 = cuda and bool(ctx.matrix.get("bf16")) and float(cc) >= float(ctx.matrix["bf16"].get("min_compute_capability", 8.0))
    kw: dict[str, Any] = dict(
        output_dir=workdir, per_device_train_batch_size=1, gradient_accumulation_steps=4, learning_rate=2e-4,
        max_steps=2, logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none",
        gradient_checkpointing=True, optim="paged_adamw_8bit" if cuda else "adamw_torch",
    )
    if bf16:
        kw["bf16"] = True
    elif cuda:
        kw["fp16"] = True
    return kw


_COMPAT = {"TrainingArguments": "training_arguments", "SFTConfig": "sft_config"}
_PRECISION = ("fp16", "bf16", "tf32", "fp16_full_eval", "bf16_full_eval")

# The classes this probe constructs, and the one module each comes from: the allow-list that a matrix picks
# from (issue 15: a matrix once named `logging.basicConfig` here, and truncated a file as root).
CLASSES: dict[str, str] = {
    "TrainingArguments": "transformers", "Seq2SeqTrainingArguments": "transformers",
    "SFTConfig": "trl", "DPOConfig": "trl", "ORPOConfig": "trl", "KTOConfig": "trl", "CPOConfig": "trl",
    "GRPOConfig": "trl", "RewardConfig": "trl", "PPOConfig": "trl",
}
TrainingClass = Literal["TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig", "DPOConfig", "ORPOConfig",
                        "KTOConfig", "CPOConfig", "GRPOConfig", "RewardConfig", "PPOConfig"]
# Keywords that name files, folders, the Hub or another config file: the probe writes only to its own folder
# and reads nothing a matrix names.
REFUSED_KEYWORDS = frozenset({
    "output_dir", "logging_dir", "deepspeed", "fsdp_config", "accelerator_config", "resume_from_checkpoint",
    "push_to_hub", "hub_model_id", "hub_token", "hub_strategy", "hub_private_repo", "push_to_hub_model_id",
    "push_to_hub_organization", "push_to_hub_token", "model_init_kwargs", "ref_model_init_kwargs",
    "trust_remote_code", "chat_template_path", "dataset_kwargs",
})
Keywords = dict[Identifier, PlainValue]


class TrainingArgsParams(ProbeParams):
    """Params of training-args: one class from the probe's allow-list and its keywords (plain values only)."""

    class_: TrainingClass | None = Field(None, alias="class", description=(
        "The class to construct: TrainingArguments, SFTConfig, ... ('transformers.TrainingArguments' and "
        "'trl.SFTConfig' are read as those names)."))
    keywords: Keywords = Field(default_factory=dict, description="Keywords for `class`.")
    training_args: Keywords | None = Field(None, description="Keywords for TrainingArguments.")
    sft_config: Keywords | None = Field(None, description="Keywords for trl's SFTConfig.")

    @field_validator("class_", mode="before")
    @classmethod
    def _dotted(cls, value: Any) -> Any:
        """The spelling of today's matrices, 'transformers.TrainingArguments', names the same allowed class."""
        if isinstance(value, str) and "." in value:
            module, _, name = value.rpartition(".")
            if CLASSES.get(name) == module:
                return name
        return value

    def problems(self, facts: MatrixFacts) -> list[str]:
        out = []
        for label, kw in (("keywords", self.keywords), ("training_args", self.training_args or {}),
                          ("sft_config", self.sft_config or {})):
            out += plain_keywords(kw, f"params.{label}")
            out += [f"params.{label}.{k}: refused (it names a file, a folder or the Hub; the probe writes only to "
                    "its own folder)" for k in sorted(REFUSED_KEYWORDS & set(kw))]
        return out


def _class(name: str) -> Any:
    """An allowed class by name, from its own module (never a name the matrix wrote as a module path)."""
    import importlib

    return getattr(importlib.import_module(CLASSES[name]), name)


def _construct(cls: Any, kw: dict[str, Any]) -> tuple[Any, str]:
    """Construct `cls(**kw)`; on TypeError, through envdoctor.compat when it has an adapter for the class."""
    try:
        return cls(**kw), ""
    except TypeError as e:
        fn_name = _COMPAT.get(cls.__name__)
        try:
            from envdoctor import compat
        except ImportError:
            raise e from None
        fn = getattr(compat, fn_name, None) if fn_name else None
        if fn is None:
            raise
        return fn(**kw), str(e)


def _requests(ctx: ProbeContext, p: TrainingArgsParams) -> list[tuple[str, dict[str, Any]]]:
    """(class, keywords) pairs: the params {class, keywords}, or training_args/sft_config, else defaults."""
    out: list[tuple[str, dict[str, Any]]] = []
    if p.class_ is not None:
        out.append((p.class_, dict(p.keywords)))
    if p.training_args is not None:
        out.append(("TrainingArguments", dict(p.training_args)))
    if p.sft_config is not None:
        out.append(("SFTConfig", dict(p.sft_config)))
    if not out:
        out.append(("TrainingArguments", {}))
        packages = {k.lower() for k in ctx.matrix.get("packages", {})}
        if "trl" in packages or not packages:
            out.append(("SFTConfig", {"max_length": 512, "packing": False, "dataset_text_field": "text"}))
    return out


@register_probe("training-args", 2, gpu="optional", timeout=240.0, params=TrainingArgsParams)
def training_args(ctx: ProbeContext) -> Outcome:
    """The matrix's TrainingArguments / SFTConfig keywords construct for real (params: class + keywords)."""
    params = TrainingArgsParams.model_validate(ctx.params)  # again here: a hand-made context gets no further
    refused = params.problems(MatrixFacts(frozenset(), frozenset()))
    if refused:
        return Outcome.failed("refused: " + "; ".join(refused))
    from transformers import TrainingArguments

    base = _training_kwargs(ctx, ctx.workdir)
    if ctx.device != "cuda":  # `use_cpu` replaced `no_cuda` in transformers 4.35
        fields = getattr(TrainingArguments, "__dataclass_fields__", {})
        base["use_cpu" if "use_cpu" in fields else "no_cuda"] = True
    done: list[str] = []
    notes: list[str] = []
    for name, given in _requests(ctx, params):
        kw = {**base, **given, "output_dir": ctx.workdir}  # a probe writes only to its own folder
        if ctx.device != "cuda":
            dropped = sorted(k for k in _PRECISION if kw.pop(k, None))
            if dropped:
                notes.append(f"{', '.join(dropped)} dropped on the CPU")
        try:
            obj, via_compat = _construct(_class(name), kw)
        except (TypeError, ValueError, ImportError, AttributeError) as e:
            return Outcome.failed(f"{name}(...): {type(e).__name__}: {e}",
                                  keywords=sorted(kw), given=sorted(given))
        done.append(f"{type(obj).__name__}({len(kw)} keywords)")
        if via_compat:
            notes.append(f"{type(obj).__name__} needed envdoctor.compat: {via_compat}")
    reason = ", ".join(done) + (f"; {'; '.join(notes)}" if notes else "")
    return Outcome.passed(reason, notes=notes)
