"""The built-in probes for real, on the CPU with the installed torch/transformers/peft/trl (CI has no GPU)."""

from __future__ import annotations

import json

import pytest

from envdoctor._certify import registry
from envdoctor._certify.registry import ProbeContext
from envdoctor._certify.runner import run_probe
from envdoctor._cli import main

MATRIX = """
[gpu.bf16]
min_compute_capability = 8.0
reason = "bf16 needs Ampere"

[[packages]]
name = "trl"
reason = "SFT"

[[probes]]
name = "imports"
tier = 1

[[probes]]
name = "cuda-available"
tier = 2

[[probes]]
name = "bnb-nf4-matmul"
tier = 2

[[probes]]
name = "llama31-rope"
tier = 2

[[probes]]
name = "training-args"
tier = 2
params = { class = "trl.SFTConfig", keywords = { eval_strategy = "no", max_length = 2048, bf16 = true, per_device_train_batch_size = 1 } }

[[probes]]
name = "tiny-qlora"
tier = 3

[[probes]]
name = "tiny-galore"
tier = 3
"""


@pytest.mark.slow
def test_certify_tier3_on_cpu_runs_the_real_probes(write_matrix, capsys) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(MATRIX))
    code = main(["certify", "--matrix", path, "--tier", "3", "--device", "cpu", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    got = {p["name"]: p for p in data["probes"]}
    assert code == 0 and data["certified"] and data["device"] == "cpu", json.dumps(data, indent=1)
    assert got["imports"]["status"] == "pass" and "torch" in got["imports"]["details"]["modules"]
    assert got["cuda-available"]["status"] == "skipped" and got["bnb-nf4-matmul"]["status"] == "skipped"
    assert "rope_type 'llama3'" in got["llama31-rope"]["reason"]
    assert got["training-args"]["reason"].startswith("SFTConfig(") and "bf16 dropped on the CPU" in got["training-args"]["reason"]
    qlora = got["tiny-qlora"]["details"]
    assert got["tiny-qlora"]["status"] == "pass" and "LoRA in fp32 on CPU" in qlora["mode"]
    assert len(qlora["losses"]) == 2 and qlora["trainable_params"] > 0
    assert got["tiny-galore"]["details"]["optimizer"] == "GaLoreAdamW"


@pytest.mark.slow
def test_training_args_probe_reports_a_removed_keyword() -> None:
    spec = registry.get("training-args")
    assert spec is not None
    ctx = ProbeContext(device="cpu", params={"class": "transformers.TrainingArguments",
                                             "keywords": {"no_such_keyword_xyz": 1}},
                       matrix={"name": "t", "packages": {"transformers": ""}}, gpu={}, workdir="")
    res = run_probe(spec, 2, ctx)
    assert res.status == "fail"
    # a TypeError, or envdoctor.compat's CompatError (a TypeError) when compat was consulted
    assert res.reason.startswith("TrainingArguments(...): ") and "no_such_keyword_xyz" in res.reason
