"""Data parallelism under torchrun / accelerate launch: one process per GPU, DDP over the trained parameters.

The launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK; https://pytorch.org/docs/stable/elastic/run.html)
is read without torch; the process group, the DDP wrapper and the reductions import torch inside.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes; one process alone is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs, saves and prints the result."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def world_from_env(env: Mapping[str, str] | None = None) -> World:
    """The world torchrun or accelerate launch describe in the environment (rank 0 of 1 without a launcher)."""
    e = os.environ if env is None else env
    try:
        return World(int(e.get("RANK", "0")), int(e.get("WORLD_SIZE", "1")),
                     int(e.get("LOCAL_RANK", e.get("RANK", "0"))))
    except ValueError as err:
        from ..errors import ConfigError

        raise ConfigError(f"RANK/WORLD_SIZE/LOCAL_RANK are not integers ({err}); launch with torchrun") from err


def init(world: World, cuda: bool) -> None:
    """Join the process group (NCCL on CUDA, gloo on the CPU) and pin this process to its GPU."""
    if not world.distributed:
        return
    import torch
    import torch.distributed as tdist

    if cuda:
        torch.cuda.set_device(world.local_rank)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if cuda else "gloo")


def shutdown(world: World) -> None:
    """Leave the process group (torch warns at exit otherwise)."""
    if world.distributed:
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.destroy_process_group()


def barrier(world: World) -> None:
    """Wait for every rank (after rank 0 saved a checkpoint, before anyone reads it)."""
    if world.distributed:
        import torch.distributed as tdist

        tdist.barrier()


def all_sum(values: list[float], world: World, device: Any) -> list[float]:
    """Each value summed over the ranks (float64, one all-reduce)."""
    if not world.distributed:
        return values
    import torch
    import torch.distributed as tdist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return [float(x) for x in t.tolist()]


def all_max(value: float, world: World, device: Any) -> float:
    """The largest value over the ranks (peak memory)."""
    if not world.distributed:
        return value
    import torch
    import torch.distributed as tdist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return float(t.item())


def shard(stream: Iterator[Any], world: World) -> Iterator[Any]:
    """Every world_size-th item of a stream that each rank builds identically, starting at this rank's."""
    for i, item in enumerate(stream):
        if i % world.world_size == world.rank:
            yield item


def loss_module(model: Any, fused: bool, chunk: int | None = None, max_len: int | None = None) -> Any:
    """A module whose forward is the training loss, so DDP sees the whole step (the fused loss bypasses forward);
    `chunk`: tokens per chunk of the fused loss (None: memory.loss_chunk); `max_len`: the longest document, for a
    varlen attention (varlen.doc_bound)."""
    import torch

    from .fast import causal_lm_loss

    class _Loss(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.model = inner

        def forward(self, input_ids: Any, labels: Any, position_ids: Any, cu_seqlens: Any = None) -> Any:
            return causal_lm_loss(self.model, input_ids, labels, position_ids, fused=fused, chunk=chunk,
                                  cu_seqlens=cu_seqlens, max_len=max_len)

    return _Loss(model)


def wrap(module: Any, world: World, cuda: bool, fsdp: bool = False) -> Any:
    """DDP over the trained parameters, or FSDP2 (`fully_shard`) of each decoder layer and the loss module."""
    if not world.distributed:
        return module
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        from .fast import decoder_blocks

        # one shard group per decoder layer, the rest (embeddings, head, final norm) in the root: the fused loss
        # reads the head's weight inside the root's forward, where it is gathered
        for block in decoder_blocks(module.model):
            fully_shard(block)
        fully_shard(module)
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    frozen = [n for n, p in module.named_parameters() if not p.requires_grad]
    frozen += [n for n, _ in module.named_buffers()]
    # every rank loaded the same base; only the adapters (or GaLore's weights) need DDP's sync and all-reduce
    DDP._set_params_and_buffers_to_ignore_for_model(module, frozen)
    # find_unused_parameters off: every trained parameter takes part in every step (its check costs a graph walk)
    return DDP(module, device_ids=[world.local_rank] if cuda else None, find_unused_parameters=False,
               broadcast_buffers=False)


def full_state_dict(model: Any) -> dict[str, Any]:
    """The unsharded state dict of an FSDP model on rank 0 (empty elsewhere); every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return dict(get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)))


def load_full_state_dict(model: Any, state: dict[str, Any]) -> None:
    """Load a full state dict (rank 0's) into an FSDP model, broadcast and sharded; every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True,
                                                                strict=False))
