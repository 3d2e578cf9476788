"""The chunked loss's per-chunk cross-entropy rows (training/loss_rows.py) timed alone (GPU only): the torch reference
against the Triton kernel at a few BLOCK / num_warps settings, then the whole chunked_linear_cross_entropy both ways.

    python benchmarks/bench_loss.py [--tokens 8192] [--hidden 4096] [--vocab 128256] [--reference]

Each line: a variant's CUDA-event time (median of 20 after 5 warm-ups) in microseconds, and for the rows the
memory speed it amounts to (the kernel reads a valid bf16 row twice and writes it once, an ignored row a quarter of
the rows here, only writes its zeros; the same bytes are counted for the reference, whose real traffic is larger). The rows are timed on one buffer that each call overwrites with its
gradient (the values change, the work does not). --reference: the whole loss through the reference only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_lora_parts import timed  # noqa: E402  (CUDA events, median of 20 after 5 warm-ups)

TRIES = [{}, {"BLOCK": 16384}, {"BLOCK": 8192}, {"BLOCK": 65536}, {"NUM_WARPS": 16}, {"NUM_WARPS": 8},
         {"BLOCK": 16384, "NUM_WARPS": 16}, {"BLOCK": 8192, "NUM_WARPS": 8}]


def time_rows(n: int, v: int, run: Callable[[str, Callable[[], object], int], None]) -> None:
    """One chunk of n x v bf16 logits: the reference, then the kernel at each of TRIES (class attributes)."""
    import torch

    from envdoctor.training import loss_rows

    logits = torch.randn(n, v, device="cuda", dtype=torch.bfloat16)
    labels = torch.randint(0, v, (n,), device="cuda")
    labels[::4] = loss_rows.IGNORE_INDEX
    inv_n = torch.full((), 1.0 / n, device="cuda")
    valid = n - len(range(0, n, 4))  # an ignored row is only written (gradient) or not touched at all (loss only)
    traffic, once = (3 * valid + (n - valid)) * v * 2, valid * v * 2
    run(f"rows {n}x{v}: torch reference", lambda: loss_rows.rows(logits, labels, 1.0, inv_n, True), traffic)
    run(f"rows {n}x{v}: torch reference, loss only", lambda: loss_rows.rows(logits, labels, 1.0, inv_n, False), once)
    kernel = loss_rows.TritonRows()
    base = (loss_rows.TritonRows.BLOCK, loss_rows.TritonRows.NUM_WARPS)
    for change in TRIES:
        loss_rows.TritonRows.BLOCK, loss_rows.TritonRows.NUM_WARPS = base
        for k, val in change.items():
            setattr(loss_rows.TritonRows, k, val)
        try:
            run(f"rows {n}x{v}: kernel {change or 'as shipped'}", lambda: kernel(logits, labels, 1.0, inv_n, True),
                traffic)
        except Exception as e:  # a setting the kernel cannot take
            print(f"rows {n}x{v}: kernel {change}: {type(e).__name__}: {str(e)[:120]}", flush=True)
    loss_rows.TritonRows.BLOCK, loss_rows.TritonRows.NUM_WARPS = base
    run(f"rows {n}x{v}: kernel as shipped, loss only", lambda: kernel(logits, labels, 1.0, inv_n, False), once)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--reference", action="store_true", help="the whole loss through the torch reference only")
    a = ap.parse_args()
    import bench_trainer
    import torch

    from envdoctor.training import loss_rows
    from envdoctor.training.fast import chunked_linear_cross_entropy

    torch.manual_seed(0)
    V = a.vocab
    res: dict[str, float] = {}

    def run(name: str, fn: Callable[[], object], nbytes: int = 0) -> None:
        res[name] = round(timed(fn), 1)
        speed = f" {nbytes / res[name] / 1e3:7.0f} GB/s" if nbytes else ""
        print(f"{name:58s} {res[name]:9.1f} us{speed}", flush=True)

    if not a.reference:
        for n in (512, 1024):
            time_rows(n, V, run)
    h = (torch.randn(a.tokens, a.hidden, device="cuda", dtype=torch.bfloat16)).requires_grad_()
    w = torch.randn(V, a.hidden, device="cuda", dtype=torch.bfloat16) * 0.02  # the frozen head of a QLoRA run
    labels = torch.randint(0, V, (a.tokens,), device="cuda")
    labels[: a.tokens // 8] = loss_rows.IGNORE_INDEX

    def whole() -> None:
        h.grad = None
        chunked_linear_cross_entropy(h, w, labels).backward()

    key = (str(h.device), torch.bfloat16)
    loss_rows._CHOSEN[key] = loss_rows.rows  # the reference, forced for this process
    run(f"chunked_linear_cross_entropy {a.tokens}x{a.hidden} W {V}: reference", whole)
    if not a.reference:
        loss_rows._CHOSEN.pop(key)
        picked = loss_rows.rows_for(h)
        print(f"chooser picks: {type(picked).__name__ if picked is not loss_rows.rows else 'the reference'}")
        run(f"chunked_linear_cross_entropy {a.tokens}x{a.hidden} W {V}: kernel", whole)
    bench_trainer.emit({"kind": "loss_rows", "tokens": a.tokens, "hidden": a.hidden, "vocab": V,
                        "block": loss_rows.TritonRows.BLOCK, "num_warps": loss_rows.TritonRows.NUM_WARPS, "us": res}, "loss_rows.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
