"""CUDA graphs of the whole forward + backward: the host launches one graph per micro-batch, not ~6,000 kernels.

At batch 1 the QLoRA step is bound by the host (benchmarks/trainer_NOTES.md: ~160 ms of kernels in a 270-500 ms
step). Captured once on a fixed-shape batch, the step replays with new tokens copied into its static inputs.
What capture needs, and how it is met:
- static shapes: every micro-batch is padded to the plan's sequence length (pads carry no loss);
- no host syncs inside: the loss stays on the device, token counts come from the CPU tensors;
- no stateful RNG: checkpointing's recompute must see the forward's dropout masks, and the CUDA RNG state cannot
  be saved and restored inside a capture. LoRA dropout becomes a counter-based dropout (`HashDropout`): its
  mask is a pure function of (seed tensor, call site, element), so the recompute and the backward rebuild the
  forward's mask; the seed tensor advances between replays, outside the graph;
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

from .kinds import Outcome
from .varlen import KEY

_BLOCK = 2048


class DropoutSeeds:
    """One device counter shared by every HashDropout: each site draws from (counter + site)."""

    def __init__(self, device: torch.device, start: int = 0) -> None:
        self.base = torch.full((), start, dtype=torch.int64, device=device)
        self.sites = 0

    def site(self) -> int:
        """A new call site's offset."""
        self.sites += 1
        return self.sites - 1

    def advance(self) -> None:
        """New masks for the next micro-batch (a device add: no host sync, outside any graph)."""
        self.base.add_(max(self.sites, 1))


def _triton_kernel() -> Any:
    import triton
    import triton.language as tl

    # no annotations: Triton reads them as types (and `from __future__ import annotations` makes them strings)
    @triton.jit
    def hash_dropout(x_ptr, y_ptr, seed_ptr, site, n, p, scale, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < n
        seed = tl.load(seed_ptr) + site
        keep = tl.rand(seed, offs.to(tl.uint32)) >= p
        x = tl.load(x_ptr + offs, mask=inside, other=0.0)
        tl.store(y_ptr + offs, tl.where(keep, x * scale, 0.0).to(y_ptr.dtype.element_ty), mask=inside)

    return hash_dropout


_KERNEL: list[Any] = []  # [kernel] once compiled, [None] where Triton cannot compile it (the torch mask then)
_MASK = (1 << 53) - 1


def _keep_torch(seed: torch.Tensor, site: int, x: torch.Tensor, p: float) -> torch.Tensor:
    """The keep-mask from a splitmix64 hash of (seed, site, index) in tensor ops: on any device, no host sync."""
    z = torch.arange(x.numel(), device=x.device, dtype=torch.int64).view(x.shape)
    z = z * -7046029254386353131 + (seed.to(x.device) * 1_000_003 + site)  # 0x9E3779B97F4A7C15 as int64, wraps
    z = (z ^ (z >> 30)) * -4658895280553007687
    z = (z ^ (z >> 27)) * -7723592293110705685
    z = z ^ (z >> 31)
    return (z & _MASK).to(torch.float64) / float(1 << 53) >= p


def hash_dropout(x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
    """x with elements zeroed with probability p and the rest scaled by 1/(1-p); the mask depends only on
    (seed, site, element index), so the same call gives the same mask every time (no RNG state)."""
    scale = 1.0 / (1.0 - p)
    if x.is_cuda and not _KERNEL:
        try:
            _KERNEL.append(_triton_kernel())
            _launch(_KERNEL[0], torch.zeros(8, device=x.device, dtype=x.dtype), seed, 0, 0.5)
        except Exception:
            _KERNEL[:] = [None]
    if x.is_cuda and _KERNEL[0] is not None:
        return _launch(_KERNEL[0], x, seed, site, p)
    return x * _keep_torch(seed, site, x, p).to(x.dtype) * scale


def _launch(kernel: Any, x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
    x = x.contiguous()
    y = torch.empty_like(x)
    n = x.numel()
    kernel[((n + _BLOCK - 1) // _BLOCK,)](x, y, seed, site, n, p, 1.0 / (1.0 - p), BLOCK=_BLOCK)
    return y


class _HashDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
        ctx.seed, ctx.site, ctx.p = seed, site, p  # a counter read again in backward, not a saved activation
        return hash_dropout(x, seed, site, p)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        return hash_dropout(grad, ctx.seed, ctx.site, ctx.p), None, None, None  # the same mask, the same scale


class HashDropout(torch.nn.Module):
    """nn.Dropout(p) with a counter-based mask; identity in eval mode."""

    def __init__(self, p: float, seeds: DropoutSeeds) -> None:
        super().__init__()
        self.p, self.seeds, self.at = p, seeds, seeds.site()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return _HashDropout.apply(x, self.seeds.base, self.at, self.p)


def use_hash_dropout(model: Any, seeds: DropoutSeeds) -> Outcome:
    """Swap every LoRA dropout for HashDropout; refuse, changing nothing, when any other dropout with p > 0 is there
    (it would still need the RNG state)."""
    lora = [(drops, name, d) for m in model.modules()
            if isinstance(drops := getattr(m, "lora_dropout", None), torch.nn.ModuleDict)
            for name, d in drops.items() if isinstance(d, torch.nn.Dropout) and d.p > 0]
    ours = {id(d) for _, _, d in lora}
    left = [type(m).__name__ for m in model.modules()
            if isinstance(m, torch.nn.Dropout) and m.p > 0 and id(m) not in ours]
    if left:
        return Outcome(False, f"{len(left)} dropout modules other than LoRA's ({left[0]}) use the RNG state")
    for drops, name, d in lora:
        drops[name] = HashDropout(d.p, seeds)
    return Outcome(True, f"{len(lora)} LoRA dropouts counter-based")


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
