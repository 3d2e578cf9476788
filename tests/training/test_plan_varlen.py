"""Packed runs in the plan: through flash varlen (CUDA) no mask reaches SDPA and no k/v is repeated to every head;
off it (CPU, ENVDOCTOR_VARLEN=0, a model whose attention varlen hands back to SDPA, varlen refused at load time) the
estimate keeps the mask's repeated k/v. The H200 is declared: no GPU here."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from envdoctor._env.gpu import GpuInfo, declared
from envdoctor.errors import DoesNotFitError
from envdoctor.training import dist, runner
from envdoctor.training.config import TrainConfig
from envdoctor.training.memory import KNOWN_SHAPES, shape_from_config
from envdoctor.training.plan import Plan

LLAMA = KNOWN_SHAPES["llama-3.1-8b"]
LLAMA_CFG = {"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
             "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
             "attention_dropout": 0.0, "tie_word_embeddings": False}
# the mask's k/v at batch 4 x 2048: k and v at all 32 heads (4096 wide) instead of 8 (1024), bf16, 32 layers
MASK_KV = 32 * (4 * 2048) * 2 * 2 * (4096 - 1024)


def _cfg(packing: bool = True, **kw: object) -> TrainConfig:
    return TrainConfig(method="qlora", model="m", dataset="d.jsonl", output="o", max_steps=1, batch_size=4,
                       gradient_checkpointing=False, packing=packing, **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _varlen_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVDOCTOR_VARLEN", raising=False)


def test_a_packed_cuda_plan_on_varlen_is_estimated_as_unpacked_and_without_varlen_with_the_mask(monkeypatch):
    gpu = declared("h200")
    packed = runner.plan_run(_cfg(), LLAMA, gpu, LLAMA_CFG)
    unpacked = runner.plan_run(_cfg(packing=False), LLAMA, gpu, LLAMA_CFG)
    assert not packed.run.packed and packed.estimate.total == unpacked.estimate.total
    assert runner.levers_for(_cfg(), packed, dist.World()).varlen  # the lever the estimate counted on
    monkeypatch.setenv("ENVDOCTOR_VARLEN", "0")
    masked = runner.plan_run(_cfg(), LLAMA, gpu, LLAMA_CFG)
    assert masked.run.packed and not runner.levers_for(_cfg(), masked, dist.World()).varlen
    assert masked.estimate.total - unpacked.estimate.total == MASK_KV  # 3 GiB
    assert runner.plan_run(_cfg(packing=False), LLAMA, gpu, LLAMA_CFG).estimate.total == unpacked.estimate.total


def test_a_cpu_plan_with_packing_keeps_the_mask_term():
    cpu = GpuInfo(False, reason="no GPU")
    packed = runner.plan_run(_cfg(), LLAMA, cpu, LLAMA_CFG)
    unpacked = runner.plan_run(_cfg(packing=False), LLAMA, cpu, LLAMA_CFG)
    assert packed.device == "cpu" and packed.run.packed and not unpacked.run.packed
    assert not runner.levers_for(_cfg(), packed, dist.World()).varlen
    assert packed.estimate.total > unpacked.estimate.total


@pytest.mark.parametrize(("extra", "gap"), [
    ({"sliding_window": 4096}, "sliding-window attention"),  # Mistral 7B v0.1: every layer falls back
    ({"attn_logit_softcapping": 50.0}, "soft-capped attention scores"),  # Gemma 2
    ({"attention_dropout": 0.1}, "attention dropout"),
])
def test_a_model_whose_attention_varlen_hands_back_to_sdpa_keeps_the_mask_term(extra, gap):
    plan = runner.plan_run(_cfg(), LLAMA, declared("h200"), {**LLAMA_CFG, **extra})
    assert plan.run.packed and any(gap in n for n in plan.notes)
    # Qwen2's config keeps a window it does not use
    off = runner.plan_run(_cfg(), LLAMA, declared("h200"), {**LLAMA_CFG, "sliding_window": 131072,
                                                            "use_sliding_window": False})
    assert not off.run.packed


def test_gemma3_sliding_layers_keep_the_mask_term():
    cfg = {"model_type": "gemma3_text", "vocab_size": 262144, "hidden_size": 1152, "intermediate_size": 6912,
           "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
           "sliding_window": 512, "tie_word_embeddings": True}
    plan = runner.plan_run(_cfg(), shape_from_config(cfg), declared("h200"), cfg)
    assert plan.run.packed


def _roomy() -> tuple[TrainConfig, Plan]:
    cfg = _cfg()
    return cfg, runner.plan_run(cfg, LLAMA, declared("h200"), LLAMA_CFG)


def test_a_run_that_loses_varlen_is_replanned_with_the_mask():
    _, plan = _roomy()
    again = runner.replan_without_varlen(plan, LLAMA, "the model's attention is 'eager', not sdpa")
    assert again.run.packed and again.estimate.total - plan.estimate.total == MASK_KV
    assert (again.batch, again.checkpointing, again.run.resident_weights) == (plan.batch, False,
                                                                                plan.run.resident_weights)
    assert again.notes[-1] == (f"memory estimate {again.estimate.gib():.2f} GiB: varlen attention for the packed "
                               "documents is off (the model's attention is 'eager', not sdpa)")
    # what _execute changed on the plan before (the fused loss turned off at load time) stays changed
    assert not runner.replan_without_varlen(replace(plan, fused_loss=False), LLAMA, "a test").fused_loss


def test_a_run_that_loses_varlen_and_no_longer_fits_is_refused_in_one_line():
    _, plan = _roomy()
    tight = replace(plan, budget=plan.planned_bytes + 2**29)  # fits without the mask, not with its 3 GiB of k/v
    with pytest.raises(DoesNotFitError) as e:
        runner.replan_without_varlen(tight, LLAMA, "transformers refused it (ValueError: no\nsuch attention)")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("the plan counted on varlen attention for the packed documents, which is off "
                          "(transformers refused it (ValueError: no such attention)); with SDPA's mask")
    assert "--no-packing" in msg


def test_varlen_lost_reads_the_model_and_prepares_note():
    cfg, plan = _roomy()
    levers = runner.levers_for(cfg, plan, dist.World())

    def model(impl: str) -> SimpleNamespace:
        return SimpleNamespace(config=SimpleNamespace(_attn_implementation=impl))

    off = ["gradient checkpointing on", "varlen attention off: the model's attention is 'eager', not sdpa"]
    assert runner.varlen_lost(cfg, plan, levers, model("eager"), off) == "the model's attention is 'eager', not sdpa"
    assert runner.varlen_lost(cfg, plan, levers, model("envdoctor_varlen"), []) is None  # on: as planned
    assert runner.varlen_lost(cfg, plan, levers, model("sdpa"), []) == "not applied to the model"
    # not counted on: no packing, or the estimate had the mask anyway
    assert runner.varlen_lost(_cfg(packing=False), plan, levers, model("eager"), off) is None
    masked = replace(plan, run=replace(plan.run, packed=True))
    assert runner.varlen_lost(cfg, masked, levers, model("eager"), off) is None
    assert runner.varlen_lost(cfg, plan, replace(levers, varlen=False), model("eager"), off) is None
