"""The planner: dtype, batch, accumulation and checkpointing chosen to fit a GPU; `envdoctor plan-memory`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from envdoctor._cli import main
from envdoctor._env.gpu import declared
from envdoctor.errors import ConfigError, DoesNotFitError
from envdoctor.training.memory import KNOWN_SHAPES, RunShape, estimate, shape_from_config
from envdoctor.training.plan import choose_dtype, make_plan, planned

LLAMA = KNOWN_SHAPES["llama-3.1-8b"]
GEMMA = KNOWN_SHAPES["gemma-3-1b"]


def test_t4_galore_gemma_checkpoints_on_the_fast_path_and_the_plain_path_refuses():
    """Seed 002: batch 2 without checkpointing OOMs a T4. The fast path checkpoints and fits; the plain path (HF loss:
    fp32 logits of a 262k vocabulary) with fp32 weights, fp32 accumulated gradients and autocast's fp16 weight copies
    (measured on an H200, 2026-12-01: benchmarks/calibration_NOTES.md) does not fit 15 GiB, and says so up front."""
    with pytest.raises(DoesNotFitError, match="does not fit Tesla T4"):
        make_plan(GEMMA, declared("t4"), RunShape("galore", 2, 1024), effective_batch=8, fast=False)
    plan = make_plan(GEMMA, declared("t4"), RunShape("galore", 2, 1024), effective_batch=8, fast=True)
    assert plan.dtype == "fp16" and plan.param_dtype == "fp32" and plan.checkpointing
    assert planned(plan.estimate, plan.reserve_factor) <= declared("t4").memory_total_bytes
    no_ckpt = estimate(GEMMA, RunShape("galore", 2, 1024, False, param_bytes=4))
    assert planned(no_ckpt, plan.reserve_factor) > declared("t4").memory_total_bytes


@pytest.mark.parametrize("gpu", ["t4", "a10g", "a100-40gb", "h200"])
@pytest.mark.parametrize("fast", [True, False])
def test_every_plan_fits_its_gpu(gpu, fast):
    info = declared(gpu)
    plan = make_plan(LLAMA, info, RunShape("qlora", 1, 2048), effective_batch=4, fast=fast)
    assert plan.planned_bytes <= info.memory_total_bytes
    assert plan.batch * plan.grad_accum == 4


def test_dtype_follows_compute_capability():
    assert choose_dtype(declared("t4")) == "fp16"
    assert choose_dtype(declared("a100-40gb")) == "bf16"
    assert choose_dtype(declared("none")) == "fp32"
    with pytest.raises(ConfigError, match="no bf16"):
        choose_dtype(declared("t4"), "bf16")


def test_a_model_too_large_is_a_clear_error():
    huge = shape_from_config({"vocab_size": 128256, "hidden_size": 16384, "intermediate_size": 53248,
                              "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8})
    with pytest.raises(ConfigError, match="does not fit Tesla T4"):
        make_plan(huge, declared("t4"), RunShape("qlora", 1, 2048), effective_batch=1)


def test_plan_memory_cli(capsys):
    assert main(["plan-memory", "--model", "gemma-3-1b", "--gpu", "t4", "--method", "galore", "--batch", "2",
                 "--seq", "1024", "--effective-batch", "8", "--format", "json"]) == 0
    raw = capsys.readouterr().out
    out = json.loads(raw)
    assert out["schema_version"] == 1 and list(out) == sorted(out)
    assert out["dtype"] == "fp16" and out["batch"] == 2 and out["grad_accum"] == 4
    assert out["planned_gib"] <= 15.0
    assert main(["plan-memory", "--model", "llama-3.1-8b", "--gpu", "a100-40gb"]) == 0
    text = capsys.readouterr().out
    assert "base weights (NF4, double quant)" in text and "plan: qlora on cuda, compute bf16" in text
    assert main(["plan-memory", "--model", "nope.json", "--gpu", "t4"]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_memory_budget_bounds_the_plan_and_refuses_clearly(capsys):
    """--max-memory-gib: checkpointing, batch and accumulation change to fit; below any plan, exit 1 with why."""
    free = make_plan(LLAMA, declared("a100-80gb"), RunShape("qlora", 1, 2048), effective_batch=8)
    bound = make_plan(LLAMA, declared("a100-80gb"), RunShape("qlora", 1, 2048), effective_batch=8, max_memory_gib=12)
    assert bound.planned_bytes <= 12 * 2**30 < free.planned_bytes
    assert (bound.checkpointing, bound.batch * bound.grad_accum) == (True, 8) and bound.batch < free.batch
    assert main(["plan-memory", "--model", "llama-3.1-8b", "--gpu", "h200", "--max-memory-gib", "12",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["budget_gib"] == 12
    assert main(["plan-memory", "--model", "llama-3.1-8b", "--gpu", "h200", "--max-memory-gib", "4"]) == 1
    assert "does not fit --max-memory-gib 4" in capsys.readouterr().err


def test_t4_galore_gemma_plan_counts_gradients_kept_through_accumulation():
    """Issue 16: the T4 plan (fp32 weights, batch 1 x 4, seq 2048, 3 layers checkpointed) peaked at 15.91 GiB."""
    run = RunShape("galore", 1, 2048, True, 3, fused_loss=True, fused_kernels=True, param_bytes=4, packed=True,
                   grad_accum=4)
    assert estimate(GEMMA, run).gib() == pytest.approx(15.91, rel=0.05)
    plan = make_plan(GEMMA, declared("t4"), RunShape("galore", 1, 2048, packed=True), effective_batch=4, kernels=False)
    assert plan.param_dtype == "fp32" and plan.planned_bytes <= declared("t4").memory_total_bytes
    assert (plan.batch, plan.checkpoint_layers) != (1, 3)


def test_world_size_shares_the_effective_batch():
    plan = make_plan(LLAMA, declared("h200"), RunShape("qlora", 1, 2048), effective_batch=8, world_size=2)
    assert plan.batch * plan.grad_accum * 2 == 8 and plan.world_size == 2


def test_auto_parallel_shards_a_model_that_does_not_fit_one_gpu():
    """Under torchrun, QLoRA of a model one T4 cannot hold: FSDP over the GPUs (estimated per shard)."""
    big = shape_from_config({"vocab_size": 128256, "hidden_size": 8192, "intermediate_size": 28672,
                             "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8})
    with pytest.raises(ConfigError, match="does not fit"):
        make_plan(big, declared("t4"), RunShape("qlora", 1, 1024), effective_batch=8, world_size=8, parallel="ddp")
    plan = make_plan(big, declared("t4"), RunShape("qlora", 1, 1024), effective_batch=8, world_size=8)
    assert plan.parallel == "fsdp" and any("FSDP" in n for n in plan.notes)
    assert plan.planned_bytes <= declared("t4").memory_total_bytes
    assert make_plan(LLAMA, declared("h200"), RunShape("qlora", 1, 2048), effective_batch=8,
                     world_size=2).parallel == "ddp"
    with pytest.raises(ConfigError, match="GaLore"):
        make_plan(GEMMA, declared("h200"), RunShape("galore", 1, 2048), effective_batch=8, world_size=2,
                  parallel="fsdp")


def test_counter_based_dropout_is_planned_only_where_cuda_graphs_run():
    """bf16 on one CUDA GPU with the fused loss: yes; a T4 (fp16), two processes, the plain path, CPU: no."""
    run = RunShape("qlora", 1, 2048, counter_dropout=True)
    assert make_plan(LLAMA, declared("h200"), run, effective_batch=1).run.counter_dropout
    assert not make_plan(LLAMA, declared("t4"), run, effective_batch=1).run.counter_dropout
    assert not make_plan(LLAMA, declared("h200"), run, effective_batch=2, world_size=2).run.counter_dropout
    assert not make_plan(LLAMA, declared("h200"), run, effective_batch=1, fast=False).run.counter_dropout
    assert not make_plan(LLAMA, declared("h200"), replace(run, counter_dropout=False), effective_batch=1).run.counter_dropout


def test_a_run_without_the_planned_counter_dropout_is_replanned_or_refused_before_any_step():
    """Graphs refused at load time (another dropout in the model, no Triton): the estimate goes back to nn.Dropout's
    copies, and a budget that only the counter-based path fitted is a DoesNotFitError, not an OOM mid-step."""
    from envdoctor.training.runner import replan_without_counter_dropout

    run = RunShape("qlora", 4, 2048, counter_dropout=True)
    roomy = make_plan(LLAMA, declared("h200"), run, effective_batch=4, fixed_batch=4, fixed_checkpointing=False)
    again = replan_without_counter_dropout(roomy, LLAMA, "CUDA graphs off: a test")
    assert again.estimate.total > roomy.estimate.total and not again.run.counter_dropout
    assert "counter-based LoRA dropout is off (CUDA graphs off: a test)" in again.notes[-1]
    tight = make_plan(LLAMA, declared("h200"), run, effective_batch=4, fixed_batch=4, fixed_checkpointing=False,
                      max_memory_gib=roomy.planned_bytes / 2**30 + 0.5)
    with pytest.raises(DoesNotFitError, match="counter-based LoRA dropout, which is off"):
        replan_without_counter_dropout(tight, LLAMA, "CUDA graphs off: a test")


def test_nf4_weights_are_kept_dequantised_only_where_the_plan_has_memory_to_spare():
    """No checkpointing and room on the card: the bf16 copy (+13 GiB for Llama-3.1-8B) is planned and counted;
    a budget without that room, a checkpointed plan, the plain path or FSDP: not."""
    run = RunShape("qlora", 4, 2048, counter_dropout=True)
    fixed = {"effective_batch": 4, "fixed_batch": 4, "fixed_checkpointing": False}
    roomy = make_plan(LLAMA, declared("h200"), run, **fixed)
    assert roomy.run.resident_weights and "kept dequantised in bf16 (+13.0 GiB" in roomy.notes[-1]
    assert roomy.estimate.parts["base weights dequantised once (bf16/fp16)"] == LLAMA.linear_params * 2
    without = estimate(LLAMA, replace(roomy.run, resident_weights=False))
    tight = make_plan(LLAMA, declared("h200"), run, **fixed, max_memory_gib=planned(without, roomy.reserve_factor) / 2**30 + 1)
    assert not tight.run.resident_weights and tight.batch == 4 and not tight.checkpointing  # the same plan, less kept
    assert not make_plan(LLAMA, declared("h200"), run, effective_batch=1, fixed_batch=1,
                         fixed_checkpointing=True).run.resident_weights
    assert not make_plan(LLAMA, declared("h200"), run, **fixed, fast=False).run.resident_weights
    assert not make_plan(LLAMA, declared("h200"), run, effective_batch=8, world_size=2, parallel="fsdp",
                         fixed_batch=4, fixed_checkpointing=False).run.resident_weights
