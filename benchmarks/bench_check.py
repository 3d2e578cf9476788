"""Benchmark: `envdoctor check --matrix llama31` as a fresh process, side by side with `pip check` and torch's
collect_env; and first contact (`envdoctor --version`, `--help`) against `python -c pass`.

Run by hand in an environment with torch, transformers, trl, peft and bitsandbytes installed:
    python benchmarks/bench_check.py [--runs 15]
Each command runs as a new process (what a user types); the commands take turns in every round, so a load
change hits them alike. The table gives the median wall time and the ratio to the first row of its group.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from importlib import metadata

SCRIPT = os.path.join(os.path.dirname(sys.executable), "envdoctor")  # the console script a user runs
GROUPS = {
    "check": {
        "envdoctor check --matrix llama31": [SCRIPT, "check", "--matrix", "llama31", "--format", "json"],
        "pip check": [sys.executable, "-m", "pip", "check"],
        "python -m torch.utils.collect_env": [sys.executable, "-m", "torch.utils.collect_env"],
    },
    "first contact": {
        "python -c pass": [sys.executable, "-c", "pass"],
        "envdoctor --version": [SCRIPT, "--version"],
        "envdoctor --help": [SCRIPT, "--help"],
        "envdoctor (no arguments)": [SCRIPT],
    },
}


def _once(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--group", choices=[*GROUPS, "all"], default="all")
    args = parser.parse_args()
    _once(GROUPS["check"]["envdoctor check --matrix llama31"])  # warm the matrix cache
    dists = len({(d.metadata["Name"] or "").lower() for d in metadata.distributions()})
    print(f"{datetime.date.today()}: python {sys.version.split()[0]}, {os.cpu_count()} cores, {dists} distributions, "
          f"load {os.getloadavg()[0]:.2f}, {args.runs} rounds, median wall time")
    for group, commands in GROUPS.items():
        if args.group not in (group, "all"):
            continue
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                times[name].append(_once(cmd))
        medians = {name: statistics.median(ts) for name, ts in times.items()}
        first = next(iter(medians.values()))
        print(f"\n{group:<40} {'median s':>9} {'ratio':>8}")
        for name, t in medians.items():
            print(f"{name:<40} {t:>9.3f} {t / first:>7.2f}x")


if __name__ == "__main__":
    main()
