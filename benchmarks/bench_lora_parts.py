"""The parts of one Llama-3.1-8B decoder layer's QLoRA step at batch 4 x 2048, timed alone (GPU only): which
rearrangement of the same arithmetic is faster, before it is built into the trainer.

    python benchmarks/bench_lora_parts.py [--tokens 8192]

Each line: a variant's CUDA-event time (median of 20 after 5 warm-ups) in microseconds for one layer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def timed(fn: Callable[[], object], reps: int = 20) -> float:
    import torch

    for _ in range(5):
        fn()
    out = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b) * 1000)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=8192)
    a = ap.parse_args()
    import bench_trainer
    import torch

    from envdoctor.training.dropout import hash_dropout

    torch.manual_seed(0)
    bf = dict(device="cuda", dtype=torch.bfloat16)
    T, H, KV, FF, R = a.tokens, 4096, 1024, 14336, 64
    x = torch.randn(T, H, **bf)
    wq, wk, wv = (torch.randn(n, H, **bf) * 0.02 for n in (H, KV, KV))
    wqkv = torch.cat([wq, wk, wv])
    wg, wu = (torch.randn(FF, H, **bf) * 0.02 for _ in range(2))
    wgu = torch.cat([wg, wu])
    wd = torch.randn(H, FF, **bf) * 0.02
    aq, ak, av = (torch.randn(R, H, **bf) * 0.02 for _ in range(3))
    bq, bk, bv = (torch.randn(n, R, **bf) * 0.02 for n in (H, KV, KV))
    gq, gk, gv = (torch.randn(T, n, **bf) for n in (H, KV, KV))
    gqkv = torch.cat([gq, gk, gv], 1)
    ggu = torch.randn(T, 2 * FF, **bf)
    seed = torch.zeros((), dtype=torch.int64, device="cuda")
    res: dict[str, float] = {}

    def run(name: str, fn: Callable[[], object]) -> None:
        res[name] = round(timed(fn), 1)
        print(f"{name:58s} {res[name]:9.1f} us", flush=True)

    run("qkv base fwd: 3 mm", lambda: (x @ wq.t(), x @ wk.t(), x @ wv.t()))
    run("qkv base fwd: 1 mm (6144)", lambda: x @ wqkv.t())
    run("gate/up fwd: 2 mm", lambda: (x @ wg.t(), x @ wu.t()))
    run("gate/up fwd: 1 mm (28672)", lambda: x @ wgu.t())
    run("down fwd", lambda: ggu[:, :FF] @ wd.t())
    run("qkv base dx: 3 mm + 2 add", lambda: gq @ wq + gk @ wk + gv @ wv)
    run("qkv base dx: mm + 2 addmm_", lambda: (gq @ wq).addmm_(gk, wk).addmm_(gv, wv))
    run("qkv base dx: cat g + 1 mm", lambda: torch.cat([gq, gk, gv], 1) @ wqkv)
    run("qkv base dx: 1 mm (g given whole)", lambda: gqkv @ wqkv)
    run("gate/up dx: 2 mm + add", lambda: ggu[:, :FF] @ wg + ggu[:, FF:] @ wu)
    run("gate/up dx: 1 mm (28672)", lambda: ggu @ wgu)
    run("dropout x3 (hash, 0.1)", lambda: [hash_dropout(x, seed, s, 0.1) for s in range(3)])
    xd = hash_dropout(x, seed, 0, 0.1)
    run("A fwd: 3 skinny mm (on dropped x)", lambda: (xd @ aq.t(), xd @ ak.t(), xd @ av.t()))
    z = xd @ aq.t()
    out_q = x @ wq.t()
    run("B fwd q: mm + add(alpha)", lambda: torch.add(out_q, z @ bq.t(), alpha=0.25))
    run("B fwd q: addmm (new)", lambda: torch.addmm(out_q, z, bq.t(), alpha=0.25))
    run("B fwd q: addmm_ (in place)", lambda: out_q.addmm_(z, bq.t(), alpha=0.25))
    run("B bwd q: dB g^T z, gz g @ B", lambda: (gq.t() @ z, gq @ bq))
    gz = gq @ bq
    run("A bwd: dA gz^T xd x3 (+3 dropout rebuilds)",
        lambda: [gz.t() @ hash_dropout(x, seed, s, 0.1) for s in range(3)])
    run("A bwd: dx_lora (gz @ A) x3 masked, summed",
        lambda: sum(hash_dropout(gz @ w, seed, s, 0.1) for s, w in enumerate((aq, ak, av))))
    run("add 64 MiB", lambda: x + xd)
    # the fused kernels (training/lora_fused.py) at their tile sizes and a few others: memory speed is ~15 us a pass
    from envdoctor.training.lora_fused import TritonOps

    ops = TritonOps()
    base = (dict(TritonOps.FWD), dict(TritonOps.BWD), dict(TritonOps.DX))
    variants = {"FWD": [{}, {"num_warps": 4}, {"SPLIT": 2}, {"SPLIT": 8}, {"BM": 32, "SPLIT": 2}],
                "BWD": [{}, {"SPLIT": 16}, {"SPLIT": 4}, {"BK": 64}, {"BK": 64, "SPLIT": 4}],
                "DX": [{}, {"num_warps": 8}, {"BM": 128}, {"BN": 256, "num_warps": 8}, {"BM": 32}]}
    dx = x.clone()
    calls = {"FWD": lambda: ops.drop_a(x, aq, seed, 1, 0.1), "BWD": lambda: ops.drop_a_grad(gz, x, seed, 1, 0.1),
             "DX": lambda: ops.add_drop_gz_a(dx, gz, aq, seed, 1, 0.1)}
    for name, tries in variants.items():
        for change in tries:
            setattr(TritonOps, name, {**base[("FWD", "BWD", "DX").index(name)], **change})
            try:
                run(f"fused {name} {change or 'as shipped'}", calls[name])
            except Exception as e:  # a tile the kernel cannot take
                print(f"fused {name} {change}: {type(e).__name__}: {str(e)[:120]}", flush=True)
        setattr(TritonOps, name, base[("FWD", "BWD", "DX").index(name)])
    bench_trainer.emit({"kind": "lora_parts", "tokens": T, "us": res}, "lora_parts.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
