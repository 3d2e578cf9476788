"""Plan time of `envdoctor fix`, pip backend against uv backend, warm cache.

Two targets: the llama31 matrix, and a requirements file (the trl/transformers set of FACTS.md's
"LLAMA fix A": transformers 4.46.3, tokenizers 0.20.3, trl 0.12.2, accelerate 1.2.1, peft 0.13.2,
datasets 3.2.0). Each plan resolves the whole target with the real resolver against the environment
of --python (default: this interpreter). Nothing is installed. One untimed run per case warms the
caches (pip's HTTP cache, uv's cache); the median of --repeat timed runs is reported.

    python benchmarks/bench_plan.py [--python PATH] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REQUIREMENTS = """\
transformers==4.46.3
tokenizers==0.20.3
trl==0.12.2
accelerate==1.2.1
peft==0.13.2
datasets==3.2.0
"""


def _time(target, python: str | None, backend: str, repeat: int) -> tuple[float, float, bool]:  # type: ignore[no-untyped-def]
    from envdoctor._fix import plan_fix

    plan_fix(target, python=python, backend=backend)  # warm the cache
    runs = []
    ok = True
    for _ in range(repeat):
        start = time.perf_counter()
        plan = plan_fix(target, python=python, backend=backend)
        runs.append(time.perf_counter() - start)
        ok = ok and not any("resolver" in p for p in plan.problems)
    resolve_s = sum(r.seconds for r in plan.resolutions)
    return statistics.median(runs), resolve_s, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=None, help="the environment to plan against (default: this one)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from envdoctor._fix import from_requirements, load_target
    from envdoctor._resolver import find_uv

    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(REQUIREMENTS, encoding="utf-8")
        targets = {"llama31": load_target("llama31"), "requirements (trl/transformers set)": from_requirements(req)}
        backends = ["pip"] + (["uv"] if find_uv() else [])
        rows = []
        for name, target in targets.items():
            for backend in backends:
                median, resolve_s, ok = _time(target, args.python, backend, args.repeat)
                rows.append({"target": name, "backend": backend, "plan_s": round(median, 2),
                             "resolver_s": round(resolve_s, 2), "resolved": ok})
    if args.json:
        print(json.dumps({"python": args.python or sys.executable, "repeat": args.repeat, "rows": rows}, indent=2))
        return 0
    print(f"plan time, warm cache, median of {args.repeat} (environment: {args.python or sys.executable})")
    print(f"{'target':<38} {'backend':<8} {'plan s':>8} {'resolver s':>11}  resolved")
    for r in rows:
        print(f"{r['target']:<38} {r['backend']:<8} {r['plan_s']:>8.2f} {r['resolver_s']:>11.2f}  {r['resolved']}")
    for name in targets:
        pip_s = next((r["plan_s"] for r in rows if r["target"] == name and r["backend"] == "pip"), None)
        uv_s = next((r["plan_s"] for r in rows if r["target"] == name and r["backend"] == "uv"), None)
        if pip_s and uv_s:
            print(f"{name}: uv is {pip_s / uv_s:.1f}x faster than pip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
