"""Data parallelism on the CPU: torchrun, 2 gloo processes (DDP, and FSDP2 of the LoRA path), one result line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


# the CLI, with each rank printing a checksum of its trained weights at the end (DDP keeps them equal)
MAIN = """
import os, sys
from envdoctor.training import loop
finish = loop._finish
def checked(plan, model, tokenizer, run, fit):
    full = [p.full_tensor() if hasattr(p, "full_tensor") else p for p in model.parameters() if p.requires_grad]
    total = sum(float(p.double().sum()) for p in full)
    os.write(2, f"RANK {os.environ['RANK']} WEIGHTS {total:.10e}\\n".encode())  # one write: ranks never interleave
    return finish(plan, model, tokenizer, run, fit)
loop._finish = checked
from envdoctor._cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_gloo_processes_train_one_run(tiny: dict[str, Path], tmp_path: Path, parallel: str) -> None:
    out = tmp_path / "ddp"
    script = tmp_path / "main.py"
    script.write_text(MAIN, encoding="utf-8")
    env = dict(os.environ, ENVDOCTOR_SKIP_GUARD="1", ENVDOCTOR_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), "train", "qlora", "--model", str(tiny["model"]), "--dataset", str(tiny["data"]),
           "--output", str(out), "--seq-len", "48", "--effective-batch", "4", "--max-steps", "3", "--lora-r", "4",
           "--save-steps", "2", "--eval-split", "0.1", "--parallel", parallel]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, proc.stdout  # rank 0 only
    result = json.loads(lines[0])
    assert result["world_size"] == 2 and result["steps"] == 3 and result["eval_loss"] > 0
    assert proc.stderr.count("plan: lora on cpu") == 1 and "data parallel (" in proc.stderr
    sums = sorted(re.findall(r"RANK (\d) WEIGHTS (\S+?e[+-]\d+)", proc.stderr))
    assert [r for r, _ in sums] == ["0", "1"] and sums[0][1] == sums[1][1]  # the same weights on both ranks
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3]  # one writer
    if parallel == "fsdp":  # each rank's optimizer shard; the adapter gathered and written once
        assert sorted(p.name for p in (out / "checkpoint-2").glob("optimizer.rank*.pt")) == [
            "optimizer.rank0.pt", "optimizer.rank1.pt"]
    assert (out / "checkpoint-2" / "state.json").is_file() and (out / "adapter" / "adapter_model.safetensors").is_file()
    if parallel == "fsdp":  # resume: the adapter scattered from rank 0, each rank its optimizer shard
        cmd[cmd.index("--max-steps") + 1] = "4"
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
        assert result["resumed_from"] == 3 and result["steps"] == 4
