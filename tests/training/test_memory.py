"""The memory estimator against peaks measured on an H200 (benchmarks/trainer_NOTES.md), and the planner."""

from __future__ import annotations

import json

import pytest

from envdoctor._cli import main
from envdoctor._env.gpu import declared
from envdoctor.errors import ConfigError
from envdoctor.training.memory import KNOWN_SHAPES, RunShape, estimate, load_shape, shape_from_config
from envdoctor.training.plan import choose_dtype, make_plan, planned

LLAMA = KNOWN_SHAPES["llama-3.1-8b"]
GEMMA = KNOWN_SHAPES["gemma-3-1b"]
QKVO = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL = (*QKVO, "gate_proj", "up_proj", "down_proj")

# torch.cuda.max_memory_allocated on an H200 (GiB), runs 2 and 3 of trainer_NOTES.md
MEASURED = [
    pytest.param(LLAMA, RunShape("qlora", 1, 2048, True, None, lora_r=64, lora_targets=QKVO), 9.08, id="qlora-r64-b1-s2048-ckpt-plain"),
    pytest.param(LLAMA, RunShape("qlora", 2, 1024, False, lora_r=16, lora_targets=ALL, fused_loss=True), 21.98, id="qlora-r16all-b2-s1024-nockpt"),
    pytest.param(LLAMA, RunShape("qlora", 8, 512, False, lora_r=8, lora_targets=("q_proj", "v_proj"), fused_loss=True), 26.09, id="qlora-r8qv-b8-s512-nockpt"),
    pytest.param(LLAMA, RunShape("qlora", 2, 4096, True, 16, lora_r=64, lora_targets=QKVO, fused_loss=True, fused_kernels=True), 24.97, id="qlora-r64-b2-s4096-ckpt16-fast"),
    pytest.param(LLAMA, RunShape("qlora", 4, 2048, True, 24, lora_r=16, lora_targets=ALL, fused_loss=True, fused_kernels=True), 20.84, id="qlora-r16all-b4-s2048-ckpt24-fast"),
    pytest.param(LLAMA, RunShape("qlora", 1, 8192, True, None, lora_r=32, lora_targets=QKVO, fused_loss=True, fused_kernels=True), 9.10, id="qlora-r32-b1-s8192-ckpt-fast"),
    pytest.param(GEMMA, RunShape("galore", 2, 1024, False), 14.52, id="galore-b2-s1024-nockpt"),
    pytest.param(GEMMA, RunShape("galore", 2, 1024, True), 8.84, id="galore-b2-s1024-ckpt"),
    pytest.param(GEMMA, RunShape("galore", 1, 1024, True), 5.77, id="galore-b1-s1024-ckpt"),
    pytest.param(GEMMA, RunShape("galore", 2, 2048, True), 14.98, id="galore-b2-s2048-ckpt"),
    pytest.param(GEMMA, RunShape("galore", 2, 1024, False, fused_loss=True, fused_kernels=True), 7.08, id="galore-b2-s1024-fast"),
    pytest.param(GEMMA, RunShape("galore", 4, 2048, True, fused_loss=True, fused_kernels=True), 5.20, id="galore-b4-s2048-ckpt-fast"),
]


@pytest.mark.parametrize(("shape", "run", "measured_gib"), MEASURED)
def test_estimate_within_10_percent_of_measured_peak(shape, run, measured_gib):
    assert estimate(shape, run).gib() == pytest.approx(measured_gib, rel=0.10)


def test_t4_galore_gemma_plain_path_chooses_checkpointing_and_batch_1():
    """Seed 002: batch 2 without checkpointing OOMs a T4; the plan drops the batch and checkpoints."""
    plan = make_plan(GEMMA, declared("t4"), RunShape("galore", 2, 1024), effective_batch=8, fast=False)
    assert plan.dtype == "fp16" and plan.checkpointing and plan.batch == 1 and plan.grad_accum == 8
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


def test_shape_from_config_json(tmp_path):
    cfg = {"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
           "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert load_shape(str(tmp_path)).linear_params == LLAMA.linear_params
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match="missing key 'hidden_size'"):
        load_shape(str(tmp_path / "bad.json"))


def test_plan_memory_cli(capsys):
    assert main(["plan-memory", "--model", "gemma-3-1b", "--gpu", "t4", "--method", "galore", "--batch", "2",
                 "--seq", "1024", "--effective-batch", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dtype"] == "fp16" and out["batch"] == 2 and out["grad_accum"] == 4
    assert out["planned_gib"] <= 15.0
    assert main(["plan-memory", "--model", "llama-3.1-8b", "--gpu", "a100-40gb"]) == 0
    text = capsys.readouterr().out
    assert "base weights (NF4, double quant)" in text and "plan: qlora on cuda, compute bf16" in text
    assert main(["plan-memory", "--model", "nope.json", "--gpu", "t4"]) == 2
    assert "nope.json" in capsys.readouterr().err
