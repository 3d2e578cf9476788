"""CUDA graphs of the whole forward + backward: the host launches one graph per micro-batch, not ~6,000 kernels.

At batch 1 the QLoRA step is bound by the host (benchmarks/trainer_NOTES.md: ~160 ms of kernels in a 270-500 ms
step). Captured once on a fixed-shape batch, the step replays with new tokens copied into its static inputs.
What capture needs, and how it is met:
- static shapes: every micro-batch is padded to the plan's sequence length (pads carry no loss);
- no host syncs inside: the loss stays on the device, token counts come from the CPU tensors;
- no stateful RNG: checkpointing's recompute must see the forward's dropout masks, and the CUDA RNG state cannot
  be saved and restored inside a capture. LoRA dropout becomes a counter-based dropout (dropout.py): its mask is
  a pure function of (seed tensor, call site, element), so the recompute and the backward rebuild the forward's
  mask; the seed tensor advances between replays, outside the graph;
- gradients at fixed addresses: without accumulation (one micro-batch per step) the captured backward allocates
  them from the graph's pool as eager autograd does, layer by layer, so they cost nothing at the peak of the
  forward and the first recompute (PyTorch's whole-network capture pattern); with accumulation they are zeroed
  buffers made before capture that the backward adds into. Either way they stay where the optimizer reads them.
The first replay runs on the warm-up batch and must match the eager warm-up's loss and gradient norm (the same
masks): a mismatch, or any error while capturing, leaves the step eager and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .dropout import DropoutSeeds
from .kinds import Outcome
from .varlen import KEY


def _grads(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [p.grad for p in params if p.grad is not None]


def _grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in _grads(params)]))


class StepGraph:
    """Forward + backward of `loss_fn` captured on the first micro-batch, replayed for every later one.

    `__call__(batch)` takes the micro-batch's device tensors and returns the loss as a static device tensor: the
    caller consumes it (adds it to an accumulator) before the next call overwrites it, in stream order.
    """

    def __init__(self, loss_fn: Callable[..., torch.Tensor], params: Sequence[torch.Tensor], dtype: torch.dtype,
                 seeds: DropoutSeeds, scale: float, rtol: float = 2e-3, accumulate: bool = True) -> None:
        self.loss_fn, self.params, self.dtype, self.seeds, self.scale, self.rtol = loss_fn, list(params), dtype, \
            seeds, scale, rtol
        self.accumulate = accumulate  # False: one micro-batch per step, each replay writes the gradients afresh
        self.graph: Any = None
        self.outcome: Outcome | None = None  # set by the first call: captured, or why not
        self.static: dict[str, torch.Tensor] = {}
        self.loss: torch.Tensor | None = None

    def _run(self) -> torch.Tensor:
        s = self.static
        with torch.autocast("cuda", dtype=self.dtype, cache_enabled=False):
            loss = self.loss_fn(s["input_ids"], s["labels"], s["position_ids"], s.get(KEY)) * self.scale
        loss.backward()
        return loss.detach()

    def _zero(self) -> None:
        if self.accumulate:
            torch._foreach_zero_(_grads(self.params))
        else:  # the backward allocates them (in the capture: from the graph's pool)
            for p in self.params:
                p.grad = None

    def _capture(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.static = {k: v.clone() for k, v in batch.items()}
        if self.accumulate:
            for p in self.params:  # static gradient buffers, outside the graph's pool: the backward adds into them
                p.grad = torch.zeros_like(p)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # kernels chosen, Triton compiled, workspaces made: outside the capture
            for _ in range(2):
                self._zero()
                eager = self._run()
            eager_norm = _grad_norm(self.params)
            self._zero()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.empty_cache()  # the warm-up's cached blocks back: the graph's pool is the working set now
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = self._run()
        graph.replay()  # the real first micro-batch: the warm-up's batch and masks
        got, want = float(loss), float(eager)
        norm, want_norm = float(_grad_norm(self.params)), float(eager_norm)
        if not (abs(got - want) <= self.rtol * max(abs(want), 1e-6)
                and abs(norm - want_norm) <= 10 * self.rtol * max(want_norm, 1e-6)):
            raise RuntimeError(f"the replay's loss {got:.6f} / gradient norm {norm:.4g} differ from eager "
                               f"{want:.6f} / {want_norm:.4g}")
        self.graph, self.loss = graph, loss
        return loss

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.graph is not None:
            for k, v in batch.items():
                self.static[k].copy_(v, non_blocking=True)
            self.seeds.advance()
            self.graph.replay()
            assert self.loss is not None
            return self.loss
        if self.outcome is None:
            try:
                loss = self._capture(batch)
                self.outcome = Outcome(True, "CUDA graph of forward + backward captured; replay matches eager")
                return loss
            except Exception as e:  # a host sync, an RNG call or a mismatch: this run stays eager
                self.graph = None
                self.static = {}
                for p in self.params:
                    p.grad = None
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                self.outcome = Outcome(False, f"CUDA graphs off: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        self.seeds.advance()
        with torch.autocast("cuda", dtype=self.dtype):
            loss = self.loss_fn(batch["input_ids"], batch["labels"], batch["position_ids"], batch.get(KEY)) * self.scale
        loss.backward()
        return loss.detach()
