"""benchmarks/calibrate_plans.py without a GPU: the points, their dtype paths and the plans chosen for each card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "calibrate_plans.py"


def test_dry_run_lists_points_and_chosen_plans_fit_their_cards(tmp_path: Path) -> None:
    out = tmp_path / "calib.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert len(rows) >= 8 and "| point | path |" in proc.stdout
    paths = {r["path"] for r in rows}
    assert {"fp32 weights, fp16 compute, GaLore 8-bit", "bf16 weights, bf16 compute, GaLore 8-bit",
            "NF4, fp16 compute, LoRA paged AdamW", "NF4, bf16 compute, LoRA paged AdamW"} <= paths
    chosen = {(r["model"], r["gpu"]) for r in rows if r["chosen"]}
    assert {("gemma-3-1b", "t4"), ("gemma-3-1b", "a10g"), ("llama-3.1-8b", "t4"), ("llama-3.1-8b", "a10g")} <= chosen
    assert all(r["plan_fits_card"] for r in rows if r["chosen"])
    issue = next(r for r in rows if r["point"] == "gemma1b-galore-t4-issue16")
    # the plan that peaked at 15.91 GiB is now estimated at least that high: it is not chosen for a T4
    assert issue["estimate_gib"] >= 15.0 and not issue["plan_fits_card"]
