"""`envdoctor train qlora|galore` and `envdoctor plan-memory`: the bundled trainer and its memory planner."""

from __future__ import annotations

import argparse
import sys
import typing
from typing import Any

TRAIN_EPILOG = """\
examples:
  envdoctor train qlora --model ./llama --dataset data.jsonl --output runs/a
  envdoctor train galore --config run.toml --max-steps 200 --gpu t4
every key of the TOML (a [train] table or top-level keys) has a flag of the same name; flags win.
the environment must be certified first (envdoctor certify); ENVDOCTOR_SKIP_GUARD=1 skips that, with a warning.
"""


def _flag_type(annotation: Any) -> tuple[str, Any]:
    """('bool'|'list'|'value', converter) for a TrainConfig field annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    first = args[0]
    if first is bool:
        return "bool", None
    if typing.get_origin(first) is list:
        return "list", str
    if typing.get_origin(first) is typing.Literal:
        return "choice", list(typing.get_args(first))
    return "value", first if first in (int, float, str) else str


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    from ..training.config import FIELDS

    for name, field in FIELDS.items():
        if name in ("schema_version", "method"):
            continue
        flag = "--" + name.replace("_", "-")
        kind, conv = _flag_type(field.annotation)
        help_ = field.description or ""
        if kind == "bool":
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif kind == "choice":
            p.add_argument(flag, dest=name, choices=conv, default=None, help=help_)
        elif kind == "list":
            p.add_argument(flag, dest=name, default=None, metavar="A,B", help=help_ + " (comma-separated)")
        else:
            p.add_argument(flag, dest=name, type=conv, default=None, help=help_)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` and `plan-memory` subcommands."""
    p = sub.add_parser("train", help="fine-tune with the bundled QLoRA/GaLore trainer (certified environments only)",
                       epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("method", choices=["qlora", "galore"])
    p.add_argument("--config", metavar="RUN.toml", help="TOML with the run's keys (flags override them)")
    _add_config_flags(p)
    p.set_defaults(func=_train)

    m = sub.add_parser("plan-memory", help="estimate peak GPU memory of a QLoRA/GaLore run and the plan that fits")
    m.add_argument("--model", required=True, help="config.json, model folder, or a known shape (llama-3.1-8b, gemma-3-1b)")
    m.add_argument("--gpu", required=True, help="target GPU (t4, a100-40gb, h200, ...) or 'detected'")
    m.add_argument("--method", choices=["qlora", "galore"], default="qlora")
    m.add_argument("--batch", type=int, help="fix the batch (else chosen)")
    m.add_argument("--effective-batch", type=int, default=4)
    m.add_argument("--seq", type=int, default=2048)
    m.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=None)
    m.add_argument("--rank", type=int, help="LoRA r (qlora) or GaLore rank")
    m.add_argument("--targets", help="comma-separated module names, or all-linear (every linear layer but the head)")
    m.add_argument("--fast", choices=["on", "off"], default="on", help="fused loss + kernels (default on)")
    m.add_argument("--max-memory-gib", type=float, help="plan within this many GiB per GPU (default: the card)")
    m.add_argument("--world-size", type=int, default=1, help="data-parallel GPUs sharing the effective batch")
    m.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    m.set_defaults(func=_plan_memory)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from ..training.config import FIELDS

    return {k: getattr(args, k) for k in FIELDS if getattr(args, k, None) is not None}


class _Console:
    """Progress on stderr: a tqdm bar when tqdm is installed, else a line per logged step."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, total: int, done: int) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, initial=done, unit="step", file=sys.stderr, dynamic_ncols=True)

    def step(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:.0f}")
        else:
            print(f"step {step} loss {loss:.4f} {tokens_per_s:.0f} tok/s", file=sys.stderr)

    def message(self, text: str) -> None:
        print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train(args: argparse.Namespace) -> int:
    from .._render.train import render_result_json
    from ..training.config import load_config
    from ..training.runner import train

    over = _overrides(args)
    over["method"] = args.method
    cfg = load_config(args.config, over)
    from ..training.dist import world_from_env

    result = train(cfg, _Console())
    if world_from_env().main:  # one result line per run, not one per rank
        sys.stdout.write(render_result_json(result))
    return 0


def _plan_memory(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .._env.gpu import declared, detect
    from .._render.train import render_memory_json, render_memory_text
    from ..errors import UsageError
    from ..training.memory import RunShape, load_shape
    from ..training.plan import graphs_allowed, make_plan

    shape = load_shape(args.model)
    gpu = detect() if args.gpu == "detected" else declared(args.gpu)
    if args.gpu == "detected" and not gpu.available:
        raise UsageError(f"--gpu detected: no GPU found ({gpu.reason}); name a target instead, e.g. --gpu t4")
    # as `envdoctor train` plans it: CUDA graphs (counter-based LoRA dropout) where the target allows them
    run = RunShape(args.method, args.batch or 1, args.seq, counter_dropout=args.method == "qlora" and graphs_allowed())
    if args.rank:
        run = replace(run, lora_r=args.rank, galore_rank=args.rank)
    if args.targets:
        t = shape.targets([x.strip() for x in args.targets.split(",") if x.strip()])
        run = replace(run, lora_targets=t, galore_targets=t)
    plan = make_plan(shape, gpu, run, effective_batch=max(args.effective_batch, args.batch or 1),
                     fixed_batch=args.batch, fixed_checkpointing=args.checkpointing, fast=args.fast == "on",
                     max_memory_gib=args.max_memory_gib, world_size=max(1, args.world_size))
    render = render_memory_json if args.format == "json" else render_memory_text
    sys.stdout.write(render(shape, gpu, plan))
    return 0
