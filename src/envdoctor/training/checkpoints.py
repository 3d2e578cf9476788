"""Checkpoints: find the last complete one, save one (weights or adapter, optimizer, schedule), load one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def last_checkpoint(out: Path) -> tuple[int, Path] | None:
    """(step, folder) of the last checkpoint whose state.json was written (an interrupted save has none)."""
    found = [(int(p.name.split("-", 1)[1]), p) for p in out.glob("checkpoint-*")
             if p.name.split("-", 1)[1].isdigit() and (p / "state.json").is_file()]
    return max(found) if found else None


def save(model: Any, opt: Any, sched: Any, tokenizer: Any, folder: Path, state: dict[str, Any], full: bool) -> None:
    """Weights (model/ or adapter/), tokenizer, optimizer and schedule, then state.json last (it marks it complete)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder / ("model" if full else "adapter")))
    tokenizer.save_pretrained(str(folder / ("model" if full else "adapter")))
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, folder / "optimizer.pt")
    (folder / "state.json").write_text(json.dumps(state), encoding="utf-8")


def load(model: Any, opt: Any, sched: Any, folder: Path, device: Any, full: bool) -> None:
    """Weights (the whole model, or the adapter), optimizer and scheduler from a checkpoint folder."""
    import torch
    from safetensors.torch import load_file

    if full:
        weights = {}
        for f in sorted((folder / "model").glob("*.safetensors")):
            weights.update(load_file(str(f)))
        model.load_state_dict(weights, strict=False)
    else:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(folder / "adapter" / "adapter_model.safetensors")))
    saved = torch.load(folder / "optimizer.pt", map_location=device, weights_only=False)
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])




def save_sharded(model: Any, opt: Any, sched: Any, tokenizer: Any, folder: Path, state: dict[str, Any],
                 world: Any) -> None:
    """FSDP: the adapter gathered to rank 0 and written once, each rank's optimizer shard, state.json last.

    Every rank must call it (the gather and the barriers are collective).
    """
    import torch

    from . import dist

    weights = dist.full_state_dict(model)
    if world.main:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(folder / "adapter"), state_dict=weights)
        tokenizer.save_pretrained(str(folder / "adapter"))
    dist.barrier(world)
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "world_size": world.world_size},
               folder / f"optimizer.rank{world.rank}.pt")
    dist.barrier(world)
    if world.main:
        (folder / "state.json").write_text(json.dumps(state), encoding="utf-8")


def load_sharded(model: Any, opt: Any, sched: Any, folder: Path, device: Any, world: Any) -> None:
    """FSDP: the adapter read on rank 0 and scattered, this rank's optimizer shard (the same number of ranks)."""
    import re

    import torch
    from safetensors.torch import load_file

    from ..errors import ConfigError
    from . import dist

    shard = folder / f"optimizer.rank{world.rank}.pt"
    if not shard.is_file():
        raise ConfigError(f"{folder}: no optimizer shard for rank {world.rank}; resume an FSDP run with the number "
                          "of processes that saved it")
    weights: dict[str, Any] = {}
    if world.main:
        # peft writes adapter keys without the adapter's name; the live model has it (lora_A.default.weight)
        raw = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
        weights = {re.sub(r"\.(lora_[AB]|lora_embedding_[AB])\.", r".\1.default.", k): v for k, v in raw.items()}
    dist.load_full_state_dict(model, weights)
    saved = torch.load(shard, map_location=device, weights_only=False)
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
