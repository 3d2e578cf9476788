"""Benchmark: `envdoctor check --matrix llama31` as a fresh process, against `pip check` and torch's collect_env.

Run by hand in an environment with torch, transformers, trl, peft and bitsandbytes installed:
    python benchmarks/bench_check.py [--runs 15]
Each command runs as a new process (what a user types); the table gives the median wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "envdoctor check --matrix llama31": [sys.executable, "-m", "envdoctor", "check", "--matrix", "llama31", "--format", "json"],
    "pip check": [sys.executable, "-m", "pip", "check"],
    "python -m torch.utils.collect_env": [sys.executable, "-m", "torch.utils.collect_env"],
}


def _time(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    subprocess.run(COMMANDS["envdoctor check --matrix llama31"], stdout=subprocess.DEVNULL, check=False)  # warm the matrix cache
    results = {}
    for name, cmd in COMMANDS.items():
        results[name] = statistics.median(_time(cmd, args.runs))
    ours = results["envdoctor check --matrix llama31"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.runs} runs each, median wall time")
    print(f"{'command':<40} {'median s':>9} {'vs envdoctor':>13}")
    for name, t in results.items():
        print(f"{name:<40} {t:>9.3f} {t / ours:>12.1f}x")


if __name__ == "__main__":
    main()
