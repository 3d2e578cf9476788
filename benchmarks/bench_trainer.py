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


def emit(rec: dict, log: str = "bench.jsonl") -> None:
    """A `RESULT {json}` line on stdout, and the record appended to $OUT/<log> when OUT is set."""
    print("RESULT " + json.dumps(rec), flush=True)
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, log), "a", encoding="utf-8") as f:
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

    tw = time.time()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    warmup_s = time.time() - tw  # with compiled layers: includes compilation
    t0, c0 = time.time(), time.process_time()
    for _ in range(steps):
        step()
    cpu = time.process_time() - c0  # host time spent launching: near dt means the step is launch-bound
    torch.cuda.synchronize()
    dt = time.time() - t0
    rec = dict(tokens_per_s=round(steps * bs * seq / dt), step_s=round(dt / steps, 3), warmup_s=round(warmup_s, 1),
               cpu_step_s=round(cpu / steps, 3), steps=steps,
               peak_alloc_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
               peak_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2),
               losses=[round(x.item(), 4) for x in losses])
    return rec


def paged_adamw(model, lr=2e-4):
    import bitsandbytes as bnb

    return lambda: bnb.optim.PagedAdamW32bit([p for p in model.parameters() if p.requires_grad], lr=lr)


def choose_ckpt(variant: str, budget_gib: float) -> int | None:
    """The fewest checkpointed layers whose estimated peak stays under the budget (the planner's arithmetic)."""
    from envdoctor.training.memory import KNOWN_SHAPES, RunShape, estimate

    v = VARIANTS[variant]
    shape = KNOWN_SHAPES["llama-3.1-8b"]
    for k in [*range(0, shape.layers, 2), None]:
        run = RunShape("qlora", v["bs"], v["seq"], checkpointing=k != 0, checkpoint_layers=k or None,
                       lora_r=v["r"], lora_targets=tuple(v["targets"]), fused_loss=True, fused_kernels=True)
        if k is None or estimate(shape, run).gib() <= budget_gib:
            return k if k else None
    return None


def fast_run(variant: str, levers_spec: str, ckpt_layers: int | None, budget_gib: float | None = None) -> None:
    """The trainer's fast path on one baseline variant, in this process."""
    import torch

    from envdoctor.training.fast import Levers, causal_lm_loss
    from envdoctor.training.model import add_lora, freeze_base, prepare

    v = VARIANTS[variant]
    if budget_gib is not None:
        ckpt_layers = choose_ckpt(variant, budget_gib)
    lev = Levers(fused_loss="loss" in levers_spec, kernels="kern" in levers_spec, keep_bf16=True,
                 checkpoint_layers=ckpt_layers, lean="nolean" not in levers_spec, compile="comp" in levers_spec)
    t = time.time()
    model = load_quantized()
    load_s = time.time() - t
    freeze_base(model, lev)
    model = add_lora(model, v["r"], v["alpha"], 0.1, v["targets"])
    notes = prepare(model, checkpointing=True, checkpoint_layers=ckpt_layers, levers=lev)
    # the fused loss computes the model's own loss: compare with HF's (fp32 logits) on the first batch
    g = torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (v["bs"], v["seq"]), device="cuda", generator=g)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        first = (causal_lm_loss(model, ids, ids, fused=True).item(), model(input_ids=ids, labels=ids).loss.item())
    del ids
    # the trainer's default loss is the chunked one; the alternatives are measured on the same loaded model
    from envdoctor.training.fast import chunked_linear_cross_entropy, loss_impl

    impls = [("chunked", [])]
    if "long" in levers_spec:  # the same again over 24 steps: how noisy is a 6-step figure?
        impls += [("chunked-24steps", [])]
    if "ab" in levers_spec.split(","):
        impls += [("chunked-1024", [lambda w, h, t: chunked_linear_cross_entropy(h, w, t, chunk=1024)]),
                  ("chunked-2048", [lambda w, h, t: chunked_linear_cross_entropy(h, w, t, chunk=2048)]),
                  ("liger", loss_impl(Levers(kernels=True)))]
    if "leanab" in levers_spec and lev.lean and not lev.compile and variant == "seed":  # lean A/B, same process
        impls += [("no-lean", "off"), ("lean-again", "on")]
    for name, impl in impls:
        if impl in ("off", "on"):
            from envdoctor.training.lean import apply_lean, remove_lean

            remove_lean(model) if impl == "off" else apply_lean(model)
            impl = []
        rec = measure(model, paged_adamw(model), bs=v["bs"], seq=v["seq"], vocab=model.config.vocab_size,
                      fused=lev.fused_loss, impl=impl, steps=24 if "24steps" in name else 6)
        emit(dict(kind="fast", variant=variant, loss=name, levers=lev.describe(), notes=notes,
                  load_s=round(load_s, 1), ckpt_layers=ckpt_layers, budget_gib=budget_gib,
                  alloc_conf=os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""), first_loss_fused=round(first[0], 5),
                  first_loss_hf=round(first[1], 5), **rec))
    del model
    torch.cuda.empty_cache()


def profile_steps(model, opt, *, bs, seq, vocab, tag, steps=2):
    """torch.profiler over `steps` steps: GPU kernel time vs wall time, launches, per-phase CUDA-event times."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from envdoctor.training.fast import causal_lm_loss

    ids = torch.randint(0, vocab, (bs, seq), device="cuda")

    def step(ev=None):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = causal_lm_loss(model, ids, ids, fused=True, loss_impl=[])
        if ev:
            ev[1].record()
        loss.backward()
        if ev:
            ev[2].record()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if ev:
            ev[3].record()

    ev = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
    phases = []
    for _ in range(3):
        ev[0].record()
        step(ev)
        torch.cuda.synchronize()
        phases.append([round(ev[i].elapsed_time(ev[i + 1]), 1) for i in range(3)])
    torch.cuda.synchronize()
    t = time.time()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    wall = (time.time() - t) / steps
    ka = prof.key_averages()
    dev = lambda e: getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)  # noqa: E731
    gpu_ms = sum(dev(e) for e in ka) / 1e3 / steps
    launches = sum(e.count for e in ka if "LaunchKernel" in e.key or e.key.startswith("cuLaunch")) / steps
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, f"prof_{tag}.txt"), "w", encoding="utf-8") as f:
            f.write(ka.table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=60))
            f.write("\n\n")
            f.write(ka.table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=60))
    emit(dict(kind="profile", tag=tag, gpu_kernel_ms_per_step=round(gpu_ms, 1),
              wall_ms_per_step_profiled=round(wall * 1e3, 1), launches_per_step=round(launches),
              phases_ms_fwd_bwd_opt=phases))


def probe_run(variant: str, spec: str, ckpts: str) -> None:
    """One process: the fast path with `spec` levers ('kern', 'comp', 'comp,kern'), timed at each checkpoint
    count of `ckpts` (e.g. '16,32'), then profiled. Compilation time is the warm-up of the first row."""
    import torch

    from envdoctor.training.fast import Levers, decoder_blocks
    from envdoctor.training.model import add_lora, freeze_base, prepare

    v = VARIANTS[variant]
    ks = [int(k) for k in ckpts.split(",")]
    lev = Levers(fused_loss=True, kernels="kern" in spec, keep_bf16=True, checkpoint_layers=ks[0],
                 compile="comp" in spec)
    model = load_quantized()
    freeze_base(model, lev)
    model = add_lora(model, v["r"], v["alpha"], 0.1, v["targets"])
    notes = prepare(model, checkpointing=True, checkpoint_layers=ks[0], levers=lev)
    vocab = model.config.vocab_size
    opt = paged_adamw(model)
    for k in ks:
        for i, b in enumerate(decoder_blocks(model)):  # flags only: re-enabling would re-trace compiled layers
            b.gradient_checkpointing = i < k
        for rep in range(2 if lev.compile else 1):
            rec = measure(model, opt, bs=v["bs"], seq=v["seq"], vocab=vocab, fused=True, impl=[], seed=rep)
            emit(dict(kind="probe", variant=variant, spec=spec, ckpt_layers=k, rep=rep, notes=notes, **rec))
    o = opt()
    profile_steps(model, o, bs=v["bs"], seq=v["seq"], vocab=vocab, tag=f"{variant}_{spec.replace(',', '+')}")
    del model, o
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


def all_run(variants: list[str], reps: int = 3, deadline_s: float = 480.0, levers: str = "loss,kern") -> int:
    """Baseline and fast path alternating (baseline, fast, baseline, fast, ...), `reps` pairs per variant, each run
    in its own process; the table of every pair, the median ratio, and the loss parity check."""
    import statistics

    base = str(baseline_script())
    t = time.time()
    subprocess.run([sys.executable, base, "make"], check=True)
    emit(dict(kind="make", seconds=round(time.time() - t)))
    pairs: dict[str, list[tuple[dict, dict]]] = {v: [] for v in variants}
    budget: dict[str, float | None] = {}
    for rep in range(reps):
        for v in variants:
            if rep and time.time() - t > deadline_s:  # the device call has a hard limit: keep what we have
                emit(dict(kind="note", text=f"{v}: repeat {rep + 1} skipped at {time.time() - t:.0f} s"))
                continue
            b = run_child([base, v])
            b0 = b[0] if b else {"error": "no result"}
            emit(dict(kind="baseline", rep=rep, **b0))
            if v not in budget:  # the fast path plans its checkpointing in 0.97 x the baseline's measured peak
                budget[v] = b0.get("peak_alloc_gib") if "error" not in b0 else None
            flags = ["--levers", levers, *(["--budget-gib", str(budget[v] * 0.97)] if budget[v] else [])]
            # the allocator as the trainer leaves it (run 4: expandable segments cost 15 % at batch 1)
            f = run_child([__file__, "fast", v, *flags], {"PYTORCH_CUDA_ALLOC_CONF": ""})
            f0 = f[0] if f else {"error": "no result"}
            if "error" in b0 or "error" in f0:
                emit(dict(kind="failed", variant=v, rep=rep, baseline=b0, fast=f0))
                continue
            pairs[v].append((b0, f0))
    print(f"\n{'variant':8} {'rep':>3} {'baseline tok/s':>14} {'peak GiB':>8} {'fast tok/s':>10} {'peak GiB':>8} "
          f"{'ratio':>6} {'loss Δ':>7}")
    ok = True
    for v in variants:
        ratios = []
        for i, (b0, f0) in enumerate(pairs[v]):
            ratio = f0["tokens_per_s"] / b0["tokens_per_s"]
            # same init, same batches, same optimizer: the last loss (step 8) must agree within bf16 tolerance
            parity = abs(f0["losses"][-1] - b0["loss"]) / abs(b0["loss"])
            ratios.append(ratio)
            print(f"{v:8} {i + 1:>3} {b0['tokens_per_s']:>14} {b0['peak_alloc_gib']:>8} {f0['tokens_per_s']:>10} "
                  f"{f0['peak_alloc_gib']:>8} {ratio:>6.2f} {parity:>7.4f}")
            ok = ok and parity < 0.01 and f0["peak_alloc_gib"] <= b0["peak_alloc_gib"]
        if not ratios:
            print(f"{v:8} failed")
            ok = False
            continue
        med = statistics.median(ratios)
        print(f"{v:8} median ratio {med:.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}, {len(ratios)} pairs)")
        emit(dict(kind="summary", variant=v, ratios=[round(r, 3) for r in ratios], median_ratio=round(med, 3),
                  baseline_tok_s=[b["tokens_per_s"] for b, _ in pairs[v]],
                  fast_tok_s=[f["tokens_per_s"] for _, f in pairs[v]],
                  peak_gib=(max(b["peak_alloc_gib"] for b, _ in pairs[v]), max(f["peak_alloc_gib"] for _, f in pairs[v]))))
    return 0 if ok else 1


def _calib_emit(name: str, shape, run, rec: dict) -> None:
    from envdoctor.training.memory import estimate

    est = estimate(shape, run).gib()
    err = 100 * (est - rec["peak_alloc_gib"]) / rec["peak_alloc_gib"]
    emit(dict(kind="calib", config=name, estimate_gib=round(est, 2), error_pct=round(err, 1), **rec))


QLORA_CALIB = [  # name, r, targets, bs, seq, ckpt (0 none, None all, k), fused loss, kernels
    ("q-r64-qkvo-b1-s2048-ckall-plain", 64, "qkvo", 1, 2048, None, False, False),
    ("q-r16-all-b2-s1024-nock-fused", 16, "all", 2, 1024, 0, True, False),
    ("q-r8-qv-b8-s512-nock-fused", 8, "qv", 8, 512, 0, True, False),
    ("q-r64-qkvo-b2-s4096-ck16-fused-kern", 64, "qkvo", 2, 4096, 16, True, True),
    ("q-r16-all-b4-s2048-ck24-fused-kern", 16, "all", 4, 2048, 24, True, True),
    ("q-r32-qkvo-b1-s8192-ckall-fused-kern", 32, "qkvo", 1, 8192, None, True, True),
]
TARGETS = {"qkvo": ["q_proj", "k_proj", "v_proj", "o_proj"], "qv": ["q_proj", "v_proj"],
           "all": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def calib_qlora() -> None:
    """Estimator vs max_memory_allocated for QLoRA configurations on the 8B shape (one load)."""
    import torch

    from envdoctor.training.fast import Levers, apply_kernels, set_checkpointing
    from envdoctor.training.memory import KNOWN_SHAPES, RunShape
    from envdoctor.training.model import add_lora, freeze_base

    shape = KNOWN_SHAPES["llama-3.1-8b"]
    base = load_quantized()
    freeze_base(base, Levers())
    kernels_on = False
    for name, r, tg, bs, seq, ck, fused, kern in QLORA_CALIB:
        if kern and not kernels_on:
            apply_kernels(base)
            kernels_on = True
        model = add_lora(base, r, 2 * r, 0.1, TARGETS[tg])
        set_checkpointing(model, ck != 0, ck or None)
        model.train()
        rec = measure(model, paged_adamw(model), bs=bs, seq=seq, vocab=shape.vocab, fused=fused, impl=[],
                      steps=2, warmup=1)
        run = RunShape("qlora", bs, seq, checkpointing=ck != 0, checkpoint_layers=ck or None, lora_r=r,
                       lora_targets=tuple(TARGETS[tg]), fused_loss=fused, fused_kernels=kern)
        _calib_emit(name, shape, run, rec)
        base = model.unload()
        del model
        gc.collect()
        torch.cuda.empty_cache()


GALORE_CALIB = [  # name, bs, seq, checkpointing, fused loss + kernels (the four first)
    ("g-b2-s1024-nock-plain", 2, 1024, False, False),
    ("g-b2-s1024-ck-plain", 2, 1024, True, False),
    ("g-b1-s1024-ck-plain", 1, 1024, True, False),
    ("g-b2-s2048-ck-plain", 2, 2048, True, False),
    ("g-b2-s1024-nock-fast", 2, 1024, False, True),
    ("g-b4-s2048-ck-fast", 4, 2048, True, True),
]


def calib_galore() -> None:
    """GaLoreAdamW8bit (rank 128, attention + MLP) on a Gemma-3-1B-shaped model with random weights."""
    import torch
    from galore_torch import GaLoreAdamW8bit
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from envdoctor.training.fast import apply_kernels, set_checkpointing
    from envdoctor.training.memory import KNOWN_SHAPES, RunShape

    shape = KNOWN_SHAPES["gemma-3-1b"]
    cfg = Gemma3TextConfig(vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
                           num_attention_heads=4, num_key_value_heads=1, head_dim=256, sliding_window=512,
                           max_position_embeddings=32768, tie_word_embeddings=True)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    kernels_on = False
    for name, bs, seq, ck, fast in GALORE_CALIB:
        torch.set_default_dtype(torch.bfloat16)
        with torch.device("cuda"):
            model = Gemma3ForCausalLM(cfg)
        torch.set_default_dtype(torch.float32)
        if fast and not kernels_on:
            ok, why = apply_kernels(model)
            kernels_on = True
            emit(dict(kind="note", text=why))
        set_checkpointing(model, ck)
        model.train()
        tg = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
        gal = [p for n, p in model.named_parameters() if p.dim() == 2 and n.rsplit(".", 2)[-2] in tg]
        ids = {id(p) for p in gal}
        rest = [p for p in model.parameters() if id(p) not in ids]

        def opt(gal=gal, rest=rest):
            return GaLoreAdamW8bit([{"params": rest}, {"params": gal, "rank": 128, "update_proj_gap": 200,
                                                       "scale": 0.25, "proj_type": "std"}], lr=1e-5)

        try:
            rec = measure(model, opt, bs=bs, seq=seq, vocab=shape.vocab, fused=fast, impl=[], steps=2, warmup=1)
        except torch.OutOfMemoryError as e:
            rec = dict(error=str(e)[:200], peak_alloc_gib=float("nan"))
        run = RunShape("galore", bs, seq, checkpointing=ck, fused_loss=fast, fused_kernels=fast)
        _calib_emit(name, shape, run, rec)
        del model
        gc.collect()
        torch.cuda.empty_cache()


def _tokenizer(words: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>")


def _dataset(path: str, rows: int, words: list[str], seed: int = 0) -> None:
    import random

    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            kind = i % 3
            body = " ".join(rnd.choice(words) for _ in range(100))
            row = ({"text": body} if kind == 0 else
                   {"instruction": body[:200], "input": "", "output": body[200:]} if kind == 1 else
                   {"messages": [{"role": "user", "content": body[:200]}, {"role": "assistant", "content": body[200:]}]})
            f.write(json.dumps(row) + "\n")


def cli_run(method: str, model: str, data: str, out: str, *flags: str, gated: bool = False) -> dict:
    """`envdoctor train` through the CLI in a child process; its JSON result line and the plan it printed.
    With gated=False the guard is skipped (ENVDOCTOR_SKIP_GUARD=1); with gated=True it runs for real."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    if not gated:
        env["ENVDOCTOR_SKIP_GUARD"] = "1"
    t = time.time()
    proc = subprocess.run([sys.executable, "-m", "envdoctor", "train", method, "--model", model, "--dataset", data,
                           "--output", out, *flags], capture_output=True, text=True, env=env)
    plan = [ln for ln in proc.stderr.splitlines() if ln.startswith(("plan:", "  ")) and "it/s" not in ln][:8]
    res = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {"stderr": proc.stderr[-1500:]}
    return dict(kind="cli", method=method, model=model, rc=proc.returncode, wall_s=round(time.time() - t, 1),
                plan=plan, **res)


def _tiny_model(words: list[str]) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _tokenizer(words)
    tiny = "/tmp/tiny-llama"
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(tiny)
    tok.save_pretrained(tiny)
    return tiny


def cli_gated() -> None:
    """The gate for real on the GPU: refused before certification (nothing written), then `envdoctor certify
    --tier 2`, then QLoRA and GaLore through the CLI with the guard on."""
    words = [f"w{i}" for i in range(500)]
    tiny = _tiny_model(words)
    _dataset("/tmp/data.jsonl", 600, words)
    flags = ("--max-steps", "20", "--seq-len", "256", "--save-steps", "10")
    refused = cli_run("qlora", tiny, "/tmp/data.jsonl", "/tmp/gated-refused", *flags, gated=True)
    refused["output_created"] = os.path.exists("/tmp/gated-refused")
    emit(refused)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    t = time.time()
    cert = subprocess.run([sys.executable, "-m", "envdoctor", "certify", "--tier", "2"], capture_output=True,
                          text=True, env=env)
    emit(dict(kind="certify", rc=cert.returncode, wall_s=round(time.time() - t, 1), tail=cert.stdout[-1200:]))
    for method in ("qlora", "galore"):
        emit(cli_run(method, tiny, "/tmp/data.jsonl", f"/tmp/gated-{method}", *flags, gated=True))


def cli_gpu() -> None:
    """QLoRA and GaLore end to end through the CLI on a tiny model, then QLoRA on the 8B shape with the auto plan."""
    words = [f"w{i}" for i in range(500)]
    tiny = _tiny_model(words)
    tok = _tokenizer(words)
    _dataset("/tmp/data.jsonl", 600, words)
    for method in ("qlora", "galore"):
        emit(cli_run(method, tiny, "/tmp/data.jsonl", f"/tmp/run-{method}", "--max-steps", "20", "--seq-len", "256",
                     "--save-steps", "10", "--eval-split", "0.05", "--eval-steps", "10"))  # masked by default
    subprocess.run([sys.executable, str(baseline_script()), "make"], check=True)
    tok.save_pretrained(PATH)
    emit(cli_run("qlora", PATH, "/tmp/data.jsonl", "/tmp/run-8b", "--max-steps", "6", "--save-steps", "0",
                 "--effective-batch", "4"))
    emit(cli_run("qlora", PATH, "/tmp/data.jsonl", "/tmp/run-8b-t4", "--max-steps", "4", "--save-steps", "0",
                 "--effective-batch", "4", "--gpu", "a10g"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["all", "fast", "levers", "calib-qlora", "calib-galore", "cli", "gated", "probe"])
    ap.add_argument("variant", nargs="?", default="seed", choices=list(VARIANTS))
    ap.add_argument("--levers", default="loss,kern")
    ap.add_argument("--ckpt-layers", type=int, default=None)
    ap.add_argument("--budget-gib", type=float, default=None)
    ap.add_argument("--variants", default="seed,modern")
    ap.add_argument("--spec", default="kern")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--deadline-s", type=float, default=480.0)
    ap.add_argument("--ckpts", default="16,32")
    a = ap.parse_args()
    if a.what == "probe":
        subprocess.run([sys.executable, str(baseline_script()), "make"], check=True)
        probe_run(a.variant, a.spec, a.ckpts)
    elif a.what == "fast":
        fast_run(a.variant, a.levers, a.ckpt_layers, a.budget_gib)
    elif a.what == "levers":
        subprocess.run([sys.executable, str(baseline_script()), "make"], check=True)
        levers_run(a.variant)
    elif a.what == "calib-qlora":
        subprocess.run([sys.executable, str(baseline_script()), "make"], check=True)
        calib_qlora()
    elif a.what == "calib-galore":
        calib_galore()
    elif a.what == "gated":
        cli_gated()
    elif a.what == "cli":
        cli_gpu()
    else:
        return all_run(a.variants.split(","), a.reps, a.deadline_s, a.levers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
