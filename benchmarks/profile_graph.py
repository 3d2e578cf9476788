"""Where a graphed QLoRA step's GPU time goes (GPU only): the trainer's own model set-up (runner's steps), the
step captured by training/graphs.py, three replays under torch.profiler, kernels grouped by name.

    python benchmarks/profile_graph.py [--ckpt] [--batch 1] [--chunk 128]

Needs the 8B checkpoint of `.ref/qlora_baseline.py make` and the tokenizer of `.ref/mkdata.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
MODEL = os.path.join(tempfile.gettempdir(), "llama8b")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--ckpt", action="store_true")
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--no-varlen", action="store_true", help="SDPA with transformers' packed mask, as before")
    a = ap.parse_args()
    import torch

    from envdoctor.training import dist
    from envdoctor.training.fast import Levers
    from envdoctor.training.graphs import StepGraph
    from envdoctor.training.model import add_lora, freeze_base, graph_seeds, load_base, prepare
    from envdoctor.training.varlen import KEY, active, cu_seqlens

    lev = Levers(graphs=True, varlen=not a.no_varlen, dequant_blocks=4 if a.ckpt else 1)  # as runner.levers_for
    model = load_base(MODEL, quantize="nf4", dtype="bf16", device="cuda")
    freeze_base(model, lev)
    model = add_lora(model, 64, 16, 0.1, ["q_proj", "k_proj", "v_proj", "o_proj"])
    print(prepare(model, checkpointing=a.ckpt, checkpoint_layers=None, levers=lev))
    seeds, why = graph_seeds(model, lev)
    print(why)
    params = [p for p in model.parameters() if p.requires_grad]
    step = StepGraph(dist.loss_module(model, True, a.chunk, 2048 - 700), params, torch.bfloat16, seeds, 1.0,
                     accumulate=False)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 504, (a.batch, 2048), generator=g)
    pos = torch.arange(2048).repeat(a.batch, 1)
    pos[:, 700:] -= 700  # two documents per row, as packing makes them
    batch = {"input_ids": ids.cuda(), "labels": ids.clone().cuda(), "position_ids": pos.cuda()}
    if active(model):
        batch[KEY] = cu_seqlens(pos, 3 * a.batch, 2048 - 700).cuda()
    torch.cuda.reset_peak_memory_stats()
    step(batch)
    print(step.outcome)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(5):
        step(batch)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / 5
    print(f"replay {dt * 1000:.1f} ms/step = {a.batch * 2048 / dt:,.0f} tok/s (fwd+bwd only), "
          f"peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step(batch)
        torch.cuda.synchronize()
    for key in ("self_device_time_total", "self_cuda_time_total", "cuda_time_total"):
        try:
            print(prof.key_averages().table(sort_by=key, row_limit=30, max_name_column_width=70))
            break
        except (AttributeError, KeyError, ValueError) as e:
            print(f"sort {key}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
