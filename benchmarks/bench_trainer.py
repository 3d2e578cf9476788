"""Trainer speed and memory on a Llama-3.1-8B-shaped model with random weights (GPU only).

`python benchmarks/bench_trainer.py all` builds the checkpoint (the reference script's `make`), runs the plain
transformers + peft + bitsandbytes baseline (`.ref/qlora_baseline.py`, unchanged) and the trainer's fast path
side by side, each in its own process, checks the loss parity, and prints a table. `levers` measures each lever
in one process; `calib` measures the memory estimator against max_memory_allocated. Results go to stdout as
`RESULT {json}` lines (and to $OUT/bench.jsonl when OUT is set).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PATH = os.path.join(tempfile.gettempdir(), "llama8b")  # the reference script's checkpoint folder
VARIANTS = {
    "seed": dict(r=64, alpha=16, targets=["q_proj", "k_proj", "v_proj", "o_proj"], bs=1, seq=2048),
    "modern": dict(r=16, alpha=32, targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"], bs=4, seq=2048),
}


def emit(rec: dict) -> None:
    print("RESULT " + json.dumps(rec), flush=True)
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "bench.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")


def baseline_script() -> Path:
    for p in (ROOT / ".ref" / "qlora_baseline.py", ROOT.parent / "shared" / "reference" / "qlora_baseline.py"):
        if p.is_file():
            return p
    raise SystemExit("the reference script .ref/qlora_baseline.py is missing")


def load_quantized():
    """The 8B checkpoint in NF4 (double quant, bf16 compute, SDPA), exactly as the baseline loads it."""
    from envdoctor.training.model import load_base

    return load_base(PATH, quantize="nf4", dtype="bf16", device="cuda")


def measure(model, opt_factory, *, bs, seq, vocab, fused, impl, steps=6, warmup=2, seed=0, autocast=True):
    """Time `steps` optimizer steps on random tokens after `warmup`; peak memory of the whole thing."""
    import torch

    from envdoctor.training.fast import causal_lm_loss

    gc.collect()
    torch.cuda.empty_cache()
    opt = opt_factory()
    torch.cuda.reset_peak_memory_stats()
    g = torch.Generator(device="cuda").manual_seed(seed)
    losses = []

    def step():
        ids = torch.randint(0, vocab, (bs, seq), device="cuda", generator=g)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = causal_lm_loss(model, ids, ids, fused=fused, loss_impl=impl)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    dt = time.time() - t0
    rec = dict(tokens_per_s=round(steps * bs * seq / dt), step_s=round(dt / steps, 3),
               peak_alloc_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
               peak_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2),
               losses=[round(x.item(), 4) for x in losses])
    del opt
    return rec


def paged_adamw(model, lr=2e-4):
    import bitsandbytes as bnb

    return lambda: bnb.optim.PagedAdamW32bit([p for p in model.parameters() if p.requires_grad], lr=lr)


def fast_run(variant: str, levers_spec: str, ckpt_layers: int | None) -> None:
    """The trainer's fast path on one baseline variant, in this process."""
    import torch

    from envdoctor.training.fast import Levers, loss_impl
    from envdoctor.training.model import add_lora, freeze_base, prepare

    v = VARIANTS[variant]
    lev = Levers(fused_loss="loss" in levers_spec, kernels="kern" in levers_spec, keep_bf16=True,
                 checkpoint_layers=ckpt_layers)
    t = time.time()
    model = load_quantized()
    load_s = time.time() - t
    freeze_base(model, lev)
    model = add_lora(model, v["r"], v["alpha"], 0.1, v["targets"])
    notes = prepare(model, checkpointing=True, checkpoint_layers=ckpt_layers, levers=lev)
    rec = measure(model, paged_adamw(model), bs=v["bs"], seq=v["seq"], vocab=model.config.vocab_size,
                  fused=lev.fused_loss, impl=loss_impl(lev))
    emit(dict(kind="fast", variant=variant, levers=lev.describe(), notes=notes, load_s=round(load_s, 1), **rec))
    del model
    torch.cuda.empty_cache()


def levers_run(variant: str) -> None:
    """Each lever on its own, then stacked, in one process (liger's patch is global, so it comes last)."""
    import torch

    from envdoctor.training.fast import Levers, loss_impl, set_checkpointing
    from envdoctor.training.model import add_lora, freeze_base, prepare

    v = VARIANTS[variant]
    model = load_quantized()
    freeze_base(model, Levers())
    model = add_lora(model, v["r"], v["alpha"], 0.1, v["targets"])
    prepare(model, checkpointing=True, checkpoint_layers=None, levers=Levers(kernels=False))
    vocab = model.config.vocab_size
    opt = paged_adamw(model)
    steps = [("bf16, hf loss, full ckpt", False, [], None),
             ("+ chunked loss", True, [], None),
             ("+ liger fused loss", True, "liger", None)]
    for ck in (8, 16, 24):
        steps.append((f"+ liger loss, ckpt {32 - ck} of 32 layers", True, "liger", 32 - ck))
    for name, fused, impl, k in steps:
        if impl == "liger":
            impl = loss_impl(Levers(kernels=True))
        set_checkpointing(model, True, k)
        model.train()
        rec = measure(model, opt, bs=v["bs"], seq=v["seq"], vocab=vocab, fused=fused, impl=impl)
        emit(dict(kind="lever", variant=variant, lever=name, **rec))
    prepare(model, checkpointing=True, checkpoint_layers=None, levers=Levers(kernels=True))
    for k in (None, 16, 8):
        set_checkpointing(model, True, k)
        model.train()
        rec = measure(model, opt, bs=v["bs"], seq=v["seq"], vocab=vocab, fused=True,
                      impl=loss_impl(Levers(kernels=True)))
        emit(dict(kind="lever", variant=variant, lever=f"+ liger kernels, ckpt {k or 32} layers", **rec))
    del model
    torch.cuda.empty_cache()


def run_child(args: list[str], env_extra: dict[str, str] | None = None) -> list[dict]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    sys.stderr.write(proc.stderr[-3000:] if proc.returncode else "")
    recs = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode:
        recs.append(dict(error=f"{args} exited {proc.returncode}"))
    return recs


def all_run(variants: list[str], ckpt: dict[str, int | None]) -> int:
    """Baseline and fast path, each variant, each in its own process; the table and the parity check."""
    base = str(baseline_script())
    t = time.time()
    subprocess.run([sys.executable, base, "make"], check=True)
    emit(dict(kind="make", seconds=round(time.time() - t)))
    rows = []
    for v in variants:
        b = run_child([base, v])
        emit(dict(kind="baseline", **(b[0] if b else {"error": "no result"})))
        f = run_child([__file__, "fast", v, "--levers", "loss,kern",
                       *(["--ckpt-layers", str(ckpt[v])] if ckpt.get(v) is not None else [])],
                      {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"})
        if not b or not f or "error" in f[0] or "error" in b[0]:
            rows.append((v, b, f))
            continue
        b0, f0 = b[0], f[0]
        ratio = f0["tokens_per_s"] / b0["tokens_per_s"]
        # same init, same batches, same optimizer: the last loss (step 8) must agree within bf16 tolerance
        parity = abs(f0["losses"][-1] - b0["loss"]) / abs(b0["loss"])
        rows.append((v, b0, f0, ratio, parity))
    print(f"\n{'variant':8} {'baseline tok/s':>14} {'peak GiB':>8} {'fast tok/s':>10} {'peak GiB':>8} "
          f"{'ratio':>6} {'loss Δ':>7}")
    ok = True
    for row in rows:
        if len(row) == 3:
            print(f"{row[0]:8} failed: {row[1]} {row[2]}")
            ok = False
            continue
        v, b0, f0, ratio, parity = row
        print(f"{v:8} {b0['tokens_per_s']:>14} {b0['peak_alloc_gib']:>8} {f0['tokens_per_s']:>10} "
              f"{f0['peak_alloc_gib']:>8} {ratio:>6.2f} {parity:>7.4f}")
        emit(dict(kind="summary", variant=v, ratio=round(ratio, 3), loss_rel_diff=round(parity, 5),
                  mem_ok=f0["peak_alloc_gib"] <= b0["peak_alloc_gib"]))
        ok = ok and parity < 0.01
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["all", "fast", "levers", "calib"])
    ap.add_argument("variant", nargs="?", default="seed", choices=list(VARIANTS))
    ap.add_argument("--levers", default="loss,kern")
    ap.add_argument("--ckpt-layers", type=int, default=None)
    ap.add_argument("--variants", default="seed,modern")
    ap.add_argument("--ckpt", default="", help="per-variant checkpointed layers, e.g. seed=16,modern=32")
    a = ap.parse_args()
    if a.what == "fast":
        fast_run(a.variant, a.levers, a.ckpt_layers)
    elif a.what == "levers":
        subprocess.run([sys.executable, str(baseline_script()), "make"], check=True)
        levers_run(a.variant)
    elif a.what == "calib":
        from calib_memory import calibrate  # benchmarks/calib_memory.py

        calibrate()
    else:
        ck = {k: int(v) for k, v in (p.split("=") for p in a.ckpt.split(",") if p)}
        return all_run(a.variants.split(","), ck)
    return 0


if __name__ == "__main__":
    sys.exit(main())
