"""Benchmark: envdoctor.guard() with a valid certificate against the usual pre-flight (import torch and
transformers, compare versions), each in fresh interpreters as at the top of a training script.

    python benchmarks/bench_guard.py [--matrix llama31] [--tier 2] [--device cpu] [--runs 20] [--certify] [--json OUT]
    python benchmarks/bench_guard.py --scratch-matrix --profile     where the milliseconds go

--certify first runs `envdoctor certify` so that a valid certificate exists (needs the stack installed).
Bytecode caching is left on for the children (PYTHONDONTWRITEBYTECODE is removed), as in a normal install,
and one warm-up run of each is discarded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

GUARD = r"""
import sys, time
t0 = time.perf_counter()
import envdoctor
t1 = time.perf_counter()
cert = envdoctor.guard({matrix!r}, tier={tier}, device={device!r})
t2 = time.perf_counter()
heavy = [m for m in ("torch", "transformers", "pydantic", "rich", "pynvml", "packaging") if m in sys.modules]
import json  # after the clock stopped
print(json.dumps({{"import_ms": (t1 - t0) * 1e3, "call_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3,
        "valid": cert is not None, "heavy_modules": heavy}}))
"""

PROFILE = r"""
import cProfile, io, pstats, time
t0 = time.perf_counter()
import envdoctor
t1 = time.perf_counter()
profile = cProfile.Profile()
profile.enable()
envdoctor.guard({matrix!r}, tier={tier}, device={device!r})
profile.disable()
print(f"import envdoctor {{(t1 - t0) * 1e3:.2f}} ms; guard() under cProfile {{(time.perf_counter() - t1) * 1e3:.2f}} ms")
out = io.StringIO()
pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(30)
print(out.getvalue())
"""

PREFLIGHT = r"""
import time
t0 = time.perf_counter()
import torch, transformers
from importlib.metadata import PackageNotFoundError, version
from packaging.version import Version
pins = {{"torch": ">=2.4", "transformers": ">=4.43", "peft": ">=0.13", "trl": ">=0.12", "bitsandbytes": ">=0.45"}}
from packaging.specifiers import SpecifierSet
def ok(name, spec):
    try:
        return SpecifierSet(spec).contains(Version(version(name)), prereleases=True)
    except PackageNotFoundError:  # a machine without trl still pays for the lookup
        return False
bad = [n for n, s in pins.items() if not ok(n, s)]
cuda = torch.cuda.is_available() if {device!r} != "cpu" else False
t1 = time.perf_counter()
import json
print(json.dumps({{"import_ms": (t1 - t0) * 1e3, "call_ms": 0.0, "total_ms": (t1 - t0) * 1e3, "valid": not bad,
        "heavy_modules": ["torch", "transformers"]}}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a pip install compiles bytecode; measure that situation
    return env


def _once(code: str) -> dict[str, float]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    wall = (time.perf_counter() - start) * 1e3
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{out.stderr[-2000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])  # the child's numbers, as data
    data["process_ms"] = wall
    return data


def _stats(rows: list[dict[str, float]], key: str) -> dict[str, float]:
    vals = sorted(r[key] for r in rows)
    return {"median": statistics.median(vals), "min": vals[0], "p90": vals[int(0.9 * (len(vals) - 1))]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--matrix", default="llama31")
    ap.add_argument("--tier", type=int, default=2)
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--preflight-runs", type=int, default=5)
    ap.add_argument("--certify", action="store_true", help="run envdoctor certify first")
    ap.add_argument("--scratch-matrix", action="store_true",
                    help="certify and guard a minimal one-probe matrix written to a temporary folder (for machines "
                         "whose stack does not pass the real matrix's check)")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    ap.add_argument("--profile", action="store_true",
                    help="also profile one guard() in a fresh interpreter (cProfile, and -X importtime for the import)")
    args = ap.parse_args(argv)

    if args.scratch_matrix:
        import tempfile

        folder = tempfile.mkdtemp(prefix="envdoctor-bench-")
        args.matrix = os.path.join(folder, "bench.toml")
        with open(args.matrix, "w", encoding="utf-8") as f:
            # the imports probe imports only the matrix's own packages' modules: torch is listed
            f.write('schema_version = 1\nname = "bench"\nversion = "1.0"\n\n[[packages]]\nname = "torch"\n'
                    'reason = "the probe imports it"\n\n[[probes]]\nname = "imports"\ntier = 1\n'
                    'params = { modules = ["torch"] }\n')
        args.tier, args.certify = min(args.tier, 1), True
    if args.certify:
        cmd = [sys.executable, "-m", "envdoctor", "certify", "--matrix", args.matrix, "--tier", str(args.tier)]
        if args.device:
            cmd += ["--device", args.device]
        subprocess.run(cmd, check=False, env=_env())
    fmt = dict(matrix=args.matrix, tier=args.tier, device=args.device)
    guard_code, pre_code = GUARD.format(**fmt), PREFLIGHT.format(**fmt)
    _once(guard_code)  # warm-up: writes bytecode, fills the page cache
    guard = [_once(guard_code) for _ in range(args.runs)]
    if not all(r["valid"] for r in guard):
        raise SystemExit("guard() found no valid certificate: run with --certify first")
    _once(pre_code)
    pre = [_once(pre_code) for _ in range(args.preflight_runs)]

    # the guard's marginal cost inside one process (envdoctor already imported)
    sys.path_importer_cache.clear()
    import envdoctor

    envdoctor.guard(args.matrix, tier=args.tier, device=args.device)
    warm = []
    for _ in range(200):
        t = time.perf_counter()
        envdoctor.guard(args.matrix, tier=args.tier, device=args.device)
        warm.append((time.perf_counter() - t) * 1e3)

    result = {
        "python": sys.version.split()[0], "executable": sys.executable, "matrix": args.matrix, "tier": args.tier,
        "guard": {k: _stats(guard, k) for k in ("import_ms", "call_ms", "total_ms", "process_ms")},
        "guard_heavy_modules": sorted({m for r in guard for m in r["heavy_modules"]}),
        "guard_call_in_process_ms": {"median": statistics.median(warm), "min": min(warm)},
        "preflight": {k: _stats(pre, k) for k in ("total_ms", "process_ms")},
        "runs": {"guard": args.runs, "preflight": args.preflight_runs, "in_process": len(warm)},
    }
    g, p = result["guard"], result["preflight"]
    print(f"guard (fresh interpreter, {args.runs} runs, median / min / p90 ms)")
    print(f"  import envdoctor        {g['import_ms']['median']:8.2f} {g['import_ms']['min']:8.2f} {g['import_ms']['p90']:8.2f}")
    print(f"  guard() call           {g['call_ms']['median']:8.2f} {g['call_ms']['min']:8.2f} {g['call_ms']['p90']:8.2f}")
    print(f"  import + guard()       {g['total_ms']['median']:8.2f} {g['total_ms']['min']:8.2f} {g['total_ms']['p90']:8.2f}")
    print(f"  whole process          {g['process_ms']['median']:8.2f} {g['process_ms']['min']:8.2f} {g['process_ms']['p90']:8.2f}")
    print(f"  modules it loaded of torch/transformers/pydantic/rich/pynvml/packaging: {result['guard_heavy_modules'] or 'none'}")
    print(f"  guard() again in the same process: median {statistics.median(warm):.3f} ms")
    print(f"usual pre-flight: import torch, transformers; compare versions ({args.preflight_runs} runs)")
    print(f"  in-process             {p['total_ms']['median']:8.1f} {p['total_ms']['min']:8.1f} {p['total_ms']['p90']:8.1f}")
    print(f"  whole process          {p['process_ms']['median']:8.1f} {p['process_ms']['min']:8.1f} {p['process_ms']['p90']:8.1f}")
    print(f"speed-up of the pre-flight itself: {p['total_ms']['median'] / g['total_ms']['median']:.0f}x")
    if args.profile:
        print(subprocess.run([sys.executable, "-c", PROFILE.format(**fmt)], capture_output=True, text=True,
                             env=_env()).stdout)
        imports = subprocess.run([sys.executable, "-X", "importtime", "-c", "import envdoctor"], capture_output=True,
                                 text=True, env=_env()).stderr.splitlines()
        print("slowest imports of `import envdoctor` (self us | cumulative us | module):")
        print("\n".join(sorted(imports[1:], key=lambda line: -int(line.split("|")[1]))[:12]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
