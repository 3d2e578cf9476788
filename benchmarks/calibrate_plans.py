"""Calibrate the memory planner on a CUDA machine: estimate vs torch.cuda.max_memory_allocated, per dtype path.

Issue 16: a plan envdoctor chooses for a declared card must never exceed that card. Each point is a plan (the
one `envdoctor train --gpu CARD` chooses, or that plan with batch/accumulation/checkpointing forced) run through
the trainer's own code (`runner._execute`: load, LoRA or GaLore, levers, `train_loop`) for a few optimizer steps on
a random-weight model built from a config (Gemma-3-1B via Gemma3ForCausalLM/Gemma3TextConfig, Llama-3.1-8B),
each in its own subprocess. The table: estimate, measured allocated and reserved peak, card memory, and whether
reserved + CUDA context stays under the card.

    python benchmarks/calibrate_plans.py --out calib.json        # on the GPU machine (a few minutes on an H200)
    python benchmarks/calibrate_plans.py --dry-run               # anywhere: the points and the plans chosen
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

GiB = 2**30
WORDS = [f"w{i}" for i in range(2000)]


@dataclass(frozen=True)
class Point:
    """One calibration point: a model, a method, the card whose plan it is, and what is forced on that plan."""

    name: str
    model: str  # a key of MODELS
    method: str  # qlora | galore
    gpu: str  # the declared card: it decides the dtype path and the budget
    force: dict[str, Any] = field(default_factory=dict)  # RunShape fields changed after planning
    config: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (lora_targets, seq_len, fast, ...)
    why: str = ""

    @property
    def chosen(self) -> bool:
        """The plan envdoctor chooses for the card (nothing forced): it must fit that card."""
        return not self.force


ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
POINTS = [
    # the plans envdoctor chooses for the two cards (the trainer's defaults otherwise)
    Point("gemma1b-galore-t4-plan", "gemma-3-1b", "galore", "t4", why="fp16 compute, fp32 weights, GaLore 8-bit"),
    Point("gemma1b-galore-a10g-plan", "gemma-3-1b", "galore", "a10g", why="bf16, GaLore 8-bit"),
    Point("gemma1b-qlora-t4-plan", "gemma-3-1b", "qlora", "t4", why="NF4, fp16 compute"),
    Point("gemma1b-qlora-a10g-plan", "gemma-3-1b", "qlora", "a10g", why="NF4, bf16 compute"),
    Point("llama8b-qlora-t4-plan", "llama-3.1-8b", "qlora", "t4", why="NF4, fp16 compute"),
    Point("llama8b-qlora-a10g-plan", "llama-3.1-8b", "qlora", "a10g", why="NF4, bf16 compute"),
    # forced points: the overflowing T4 plan and the dtype paths at other batch/accumulation/checkpointing
    Point("gemma1b-galore-t4-issue16", "gemma-3-1b", "galore", "t4",
          {"batch": 1, "grad_accum": 4, "seq": 2048, "checkpointing": True, "checkpoint_layers": 3},
          why="the plan that peaked at 15.91 GiB allocated (issue 16)"),
    Point("gemma1b-galore-fp32w-b2x2-s1024-nock", "gemma-3-1b", "galore", "t4",
          {"batch": 2, "grad_accum": 2, "seq": 1024, "checkpointing": False, "checkpoint_layers": None},
          why="fp32 weights without checkpointing"),
    Point("gemma1b-galore-bf16-b1x4-ckall", "gemma-3-1b", "galore", "a10g",
          {"batch": 1, "grad_accum": 4, "seq": 2048, "checkpointing": True, "checkpoint_layers": None},
          why="bf16 GaLore with accumulation"),
    Point("llama8b-qlora-fp16-r16all-b2x2-s1024-ck16", "llama-3.1-8b", "qlora", "t4",
          {"batch": 2, "grad_accum": 2, "seq": 1024, "checkpointing": True, "checkpoint_layers": 16},
          {"lora_r": 16, "lora_targets": ALL}, why="NF4 fp16, all linear layers"),
    Point("llama8b-qlora-bf16-plainloss-b1x4-ckall", "llama-3.1-8b", "qlora", "a10g",
          {"batch": 1, "grad_accum": 4, "seq": 2048, "checkpointing": True, "checkpoint_layers": None},
          {"fast": "off"}, why="NF4 bf16, HF loss, no fused kernels"),
]


def model_config(name: str) -> Any:
    """The transformers config of a model shape (random weights are built from it)."""
    cfg: Any
    if name == "gemma-3-1b":
        from transformers import Gemma3TextConfig

        cfg = Gemma3TextConfig(vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
                               num_attention_heads=4, num_key_value_heads=1, head_dim=256, sliding_window=512,
                               max_position_embeddings=32768, tie_word_embeddings=True)
        cfg.architectures = ["Gemma3ForCausalLM"]
    elif name == "llama-3.1-8b":
        from transformers import LlamaConfig

        cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                          num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192)
        cfg.architectures = ["LlamaForCausalLM"]
    else:
        raise SystemExit(f"unknown model {name!r}")
    cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id = 1, 2, 3  # the word-level tokenizer's specials
    return cfg


def train_config(p: Point, model_dir: str = "m", data: str = "d.jsonl", out: str = "o") -> Any:
    """The TrainConfig of a point: the defaults, the point's keys, 2 steps (the second has it all), no saves."""
    from envdoctor.training.config import TrainConfig

    return TrainConfig(method=p.method, model=model_dir, dataset=data, output=out, gpu=p.gpu, max_steps=2,
                       save_steps=0, resume=False, **p.config)


def plan_for(p: Point, model_dir: str = "m", data: str = "d.jsonl", out: str = "o") -> tuple[Any, Any, Any]:
    """(TrainConfig, Plan, ModelShape) as the trainer makes them for the point's card, forced fields applied."""
    from envdoctor._env.gpu import declared
    from envdoctor.training.memory import shape_from_config
    from envdoctor.training.plan import with_run
    from envdoctor.training.runner import plan_run

    cfg = train_config(p, model_dir, data, out)
    cfg_dict = model_config(p.model).to_dict()
    shape = shape_from_config(cfg_dict, name=p.model)
    plan = plan_run(cfg, shape, declared(p.gpu), cfg_dict)
    if p.force:
        plan = with_run(plan, shape, **p.force)
    return cfg, plan, shape


def describe(p: Point, plan: Any) -> dict[str, Any]:
    """The point and its plan as a JSON-able row (no measurement)."""
    from envdoctor._env.gpu import declared

    card = declared(p.gpu).memory_total_bytes
    ck = "off" if not plan.checkpointing else ("all" if plan.checkpoint_layers is None else plan.checkpoint_layers)
    path = (f"{'NF4' if plan.quantize == 'nf4' else plan.param_dtype + ' weights'}, {plan.dtype} compute, "
            f"{'GaLore 8-bit' if plan.method == 'galore' else 'LoRA paged AdamW'}")
    return {"point": p.name, "model": p.model, "method": p.method, "gpu": p.gpu, "chosen": p.chosen, "why": p.why,
            "path": path, "batch": plan.batch, "grad_accum": plan.grad_accum, "seq": plan.seq, "checkpointing": ck,
            "fused_loss": plan.fused_loss, "fused_kernels": plan.fused_kernels,
            "estimate_gib": round(plan.estimate.total / GiB, 2), "planned_gib": round(plan.planned_bytes / GiB, 2),
            "card_gib": round(card / GiB, 2), "plan_fits_card": plan.planned_bytes <= card}


def make_checkpoint(name: str, folder: str) -> None:
    """Random bf16 weights for the model, built on the GPU from its config, saved with a word-level tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    if (Path(folder) / "config.json").is_file():
        return
    cfg = model_config(name)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(cfg)
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(folder)
    tokenizer().save_pretrained(folder)


def tokenizer() -> Any:
    """Word-level tokenizer over WORDS; ids 1-3 are pad, BOS, EOS as the model configs say."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([" ".join(WORDS)], trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>",
                                                                                         "</s>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>")


def make_dataset(path: str, rows: int = 600) -> None:
    """Text rows of random words (every token trained, packed to full sequences)."""
    import random

    rnd = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(rows):
            f.write(json.dumps({"text": " ".join(rnd.choice(WORDS) for _ in range(400))}) + "\n")


class _Say:
    """Reporter for the child: the plan and notes on stderr."""

    def start(self, total: int, done: int) -> None: ...
    def step(self, step: int, loss: float, tokens_per_s: float) -> None: ...
    def close(self) -> None: ...

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def run_point(p: Point, model_dir: str, data: str) -> dict[str, Any]:
    """In the child: train the point's plan for 2 optimizer steps and measure the peaks."""
    import torch

    from envdoctor._render.train import render_plan
    from envdoctor.training.dist import World
    from envdoctor.training.plan import CUDA_CONTEXT
    from envdoctor.training.runner import _execute

    out = tempfile.mkdtemp(prefix=f"calib-{p.name}-")
    cfg, plan, _ = plan_for(p, model_dir, data, out)
    print(render_plan(plan), file=sys.stderr, flush=True)
    row = describe(p, plan)
    t = time.time()
    try:
        result = _execute(cfg, plan, _Say(), World())
    except torch.OutOfMemoryError as e:
        return {**row, "error": f"OOM: {str(e)[:200]}"}
    reserved = torch.cuda.max_memory_reserved() / GiB
    measured = result.peak_gib
    card = row["card_gib"]
    return {**row, "measured_gib": measured, "reserved_gib": round(reserved, 2),
            "error_pct": round(100 * (row["estimate_gib"] - measured) / measured, 1) if measured else None,
            "under_card": reserved + CUDA_CONTEXT / GiB <= card, "steps": result.steps,
            "tokens_per_s": round(result.tokens_per_s), "wall_s": round(time.time() - t, 1)}


def table(rows: list[dict[str, Any]]) -> str:
    """The calibration table in Markdown."""
    head = ("| point | path | plan | estimate GiB | measured GiB (reserved) | error | card GiB | under card |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        plan = f"b{r['batch']} x {r['grad_accum']}, s{r['seq']}, ckpt {r['checkpointing']}"
        if "measured_gib" in r:
            got = f"{r['measured_gib']:.2f} ({r['reserved_gib']:.2f})"
            err = f"{r['error_pct']:+.1f} %"
            under = "yes" if r["under_card"] else "NO"
        else:
            got, err = r.get("error", "not run"), ""
            under = "planned fits" if r["plan_fits_card"] else "planned > card"
        lines.append(f"| {r['point']}{' (chosen)' if r['chosen'] else ''} | {r['path']} | {plan} | "
                     f"{r['estimate_gib']:.2f} (planned {r['planned_gib']:.2f}) | {got} | {err} | {r['card_gib']:.0f} | "
                     f"{under} |")
    return "\n".join(lines)


def main() -> int:
    """Dry run (the points and plans), one point (--point, in a child), or every point in its own child."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="list the points and the plans chosen; no GPU needed")
    ap.add_argument("--out", help="write the rows as JSON here")
    ap.add_argument("--only", help="comma-separated point names")
    ap.add_argument("--point", help=argparse.SUPPRESS)  # the child: run this one point
    ap.add_argument("--make", help=argparse.SUPPRESS)  # the child: build this model's checkpoint
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "envdoctor-calib"))
    ap.add_argument("--timeout-s", type=float, default=150.0, help="per point")
    ap.add_argument("--deadline-s", type=float, default=420.0, help="stop starting points after this")
    ap.add_argument("--jobs", type=int, default=3, help="points at once (peaks are per process: they do not mix)")
    a = ap.parse_args()
    work = Path(a.workdir)
    points = [p for p in POINTS if not a.only or p.name in a.only.split(",")]
    if a.make:
        make_checkpoint(a.make, str(work / a.make))
        return 0
    if a.point:
        p = next(p for p in POINTS if p.name == a.point)
        print("RESULT " + json.dumps(run_point(p, str(work / p.model), str(work / "data.jsonl"))), flush=True)
        return 0
    if a.dry_run:
        rows = [describe(p, plan_for(p)[1]) for p in points]
    else:
        rows = run_all(points, work, a.timeout_s, a.deadline_s, a.jobs)
    print(table(rows))
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    bad = [r["point"] for r in rows if r["chosen"] and (not r["plan_fits_card"] or r.get("under_card") is False)]
    if bad:
        print(f"over the card: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


def run_all(points: list[Point], work: Path, timeout_s: float, deadline_s: float, jobs: int) -> list[dict[str, Any]]:
    """Build the checkpoints and the data once, then each point in its own process (a clean allocator each).

    max_memory_allocated/reserved are per process, so `jobs` points may share the GPU without changing them.
    """
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.time()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ENVDOCTOR_SKIP_GUARD="1", PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                                                 os.environ.get("PYTHONPATH", "")]))
    make_dataset(str(work / "data.jsonl"))
    me = [sys.executable, str(Path(__file__).resolve()), "--workdir", str(work)]
    for name in sorted({p.model for p in points}):
        subprocess.run([*me, "--make", name], check=True, env=env)
        print(f"checkpoint {name} ready ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    def one(p: Point) -> dict[str, Any]:
        if time.time() - t0 > deadline_s:
            return {**describe(p, plan_for(p)[1]), "error": "not run: deadline"}
        try:
            proc = subprocess.run([*me, "--point", p.name], capture_output=True, text=True, env=env, timeout=timeout_s)
            got = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            row = json.loads(got[-1][7:]) if got else {**describe(p, plan_for(p)[1]),
                                                      "error": f"rc {proc.returncode}: {proc.stderr[-400:]}"}
        except subprocess.TimeoutExpired:
            row = {**describe(p, plan_for(p)[1]), "error": f"timeout after {timeout_s:.0f} s"}
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    # the 8B points first: they load longest
    order = sorted(points, key=lambda p: p.model != "llama-3.1-8b")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = dict(zip([p.name for p in order], pool.map(one, order), strict=True))
    return [done[p.name] for p in points]


if __name__ == "__main__":
    sys.exit(main())
