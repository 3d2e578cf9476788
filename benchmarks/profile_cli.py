"""Where `envdoctor train qlora`'s step time goes (GPU only): the CLI itself, in-process, under torch.profiler for
three steady steps (the whole step: collation, the graph or eager forward + backward, clipping, optimizer).

    python benchmarks/profile_cli.py [--steps-from 6] -- --model ... --dataset ... (envdoctor train qlora's args)

Prints the GPU time by kind of kernel (matmuls, attention, dropout, NF4, elementwise, ...), the top kernels, and
how much of the steps' wall time the GPU was busy: what is left for a faster step to take. Results are also a
`RESULT {json}` line (and $OUT/profile_cli.jsonl, as bench_trainer writes them).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

# the first pattern that matches a kernel's name is its kind
KINDS = [
    ("attention", r"flash|fmha|attention"),
    ("matmul", r"gemm|cutlass|sm90_|nvjet|xmma|cublas|splitK"),
    ("dropout", r"hash_dropout"),
    ("lora", r"drop_a_fwd|drop_a_bwd|add_drop_gz_a"),
    ("nf4", r"nf4|dequant|kDequantize"),
    ("loss", r"cross_entropy|liger_cross|_ce_|element_mul_kernel"),
    ("rmsnorm", r"rms_norm|rmsnorm"),
    ("swiglu", r"swiglu|silu"),
    ("rope", r"rope"),
    ("optimizer", r"optimizer|adam|kOptimizer|32bit_grad|foreach|multi_tensor"),
    ("copy", r"[Mm]emcpy|[Mm]emset|copy_|CatArray|direct_copy"),
    ("reduce", r"reduce_kernel|norm_kernel"),
    ("elementwise", r"elementwise|vectorized|unrolled"),
]


def kind(name: str) -> str:
    for k, pat in KINDS:
        if re.search(pat, name):
            return k
    return "other"


def attribute(prof: Any, kinds: set[str], steps: int) -> list[tuple[float, int, str]]:
    """GPU time of the kernels of `kinds` by the chain of torch ops that launched them (with input shapes):
    (ms a step, calls a step, "kind: op[shapes] < op[shapes] < ..."), largest first."""
    if not kinds:
        return []
    acc: dict[str, list[float]] = {}
    for ev in prof.events():
        if "cuda" not in str(getattr(ev, "device_type", "")).lower() or kind(ev.name) not in kinds:
            continue
        chain: list[str] = []
        parent = getattr(ev, "cpu_parent", None)
        while parent is not None and len(chain) < 3:
            if not parent.name.startswith(("cuda", "cu", "Runtime")):
                shapes = ",".join("x".join(map(str, sh)) for sh in (getattr(parent, "input_shapes", None) or []) if sh)
                chain.append(f"{parent.name}[{shapes}]")
            parent = getattr(parent, "cpu_parent", None)
        key = f"{kind(ev.name)}: " + (" < ".join(chain) or "(no launching op: a graph replay?)")
        us = getattr(ev, "device_time_total", 0) or getattr(ev, "cuda_time_total", 0)
        slot = acc.setdefault(key, [0.0, 0])
        slot[0] += us
        slot[1] += 1
    return sorted(((us / 1000 / steps, int(c) // steps, k) for k, (us, c) in acc.items()), reverse=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps-from", type=int, default=6, help="the first profiled step (the first is warm-up)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--label", default="cli")
    ap.add_argument("--method", default="qlora", help="envdoctor train's method (galore: a CPU smoke run)")
    ap.add_argument("--attribute", default="copy,elementwise,reduce",
                    help="kinds whose kernels are traced to the torch ops that launched them (eager steps only: "
                         "a CUDA graph's replay has no launching op; run with ENVDOCTOR_GRAPHS=0)")
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="after --: envdoctor train qlora's arguments")
    a = ap.parse_args()
    args = [x for x in a.train_args if x != "--"]
    import bench_trainer
    import torch
    from torch.profiler import ProfilerActivity, profile

    from envdoctor import _cli
    from envdoctor.training import loop

    state: dict[str, Any] = {"n": 0}
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=bool(a.attribute))
    accumulate = loop._accumulate

    def timed(plan: Any, stream: Any, run: Any) -> Any:
        state["n"] += 1  # _accumulate starts step n; step n-1 ended with the loop's synchronize
        if state["n"] == a.steps_from:
            sync()
            prof.__enter__()
            state["t0"] = time.perf_counter()
        if state["n"] == a.steps_from + a.steps:
            sync()
            state["wall"] = time.perf_counter() - state["t0"]
            prof.__exit__(None, None, None)
        return accumulate(plan, stream, run)

    loop._accumulate = timed
    rc = _cli.main(["train", a.method, "--max-steps", str(a.steps_from + a.steps + 1), *args])
    if "wall" not in state:
        print(f"the run ended (rc {rc}) before step {a.steps_from + a.steps}", file=sys.stderr)
        return 1
    by_kind: dict[str, float] = {}
    rows = []
    for ev in prof.key_averages():
        us = getattr(ev, "self_device_time_total", 0) or getattr(ev, "self_cuda_time_total", 0)
        if us <= 0 or getattr(ev, "is_user_annotation", False) or ev.key.startswith("Optimizer."):
            continue  # annotations (the optimizer's span) are time ranges, not kernels
        rows.append((us, ev.count, ev.key))
        by_kind[kind(ev.key)] = by_kind.get(kind(ev.key), 0.0) + us
    rows.sort(reverse=True)
    n = a.steps
    wall_ms = state["wall"] * 1000 / n
    busy_ms = sum(by_kind.values()) / 1000 / n
    print(f"{a.label}: {wall_ms:.1f} ms a step (wall), GPU busy {busy_ms:.1f} ms ({busy_ms / wall_ms:.0%})")
    for k, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {k:12s} {us / 1000 / n:8.2f} ms")
    print("top kernels (ms a step, calls a step):")
    for us, count, name in rows[:a.top]:
        print(f"  {us / 1000 / n:8.2f} {count // n:6d}  {kind(name):11s} {name[:110]}")
    launched = attribute(prof, set(a.attribute.split(",")) - {""}, n)
    if launched:
        print("launched by (ms a step, calls a step, kernel kind: the torch ops above it, innermost first):")
        for ms, calls, name in launched[:a.top]:
            print(f"  {ms:8.2f} {calls:6d}  {name}")
    bench_trainer.emit({"kind": "profile", "label": a.label, "step_ms": round(wall_ms, 1),
                        "gpu_busy_ms": round(busy_ms, 1),
                        "by_kind_ms": {k: round(v / 1000 / n, 2) for k, v in by_kind.items()},
                        "top": [[round(us / 1000 / n, 3), count // n, name[:160]] for us, count, name in rows[:60]],
                        "launched_by": [[round(ms, 3), calls, name] for ms, calls, name in launched[:60]]},
                       "profile_cli.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
