"""Counter-based LoRA dropout: the mask is a hash of (seed tensor, call site, element), never the RNG state.

Why: a CUDA graph cannot save and restore the RNG state inside its capture, and checkpointing's recompute must see
the forward's masks (graphs.py). A mask that is a pure function of a device counter is rebuilt anywhere: in the
recompute, in the backward, and in a replay (the counter advances between replays, outside the graph). So the
LoRA-A matmul saves its input x, not dropout(x): the backward rebuilds the mask (`DropLinear`). The input is saved
already (the norm's output feeds q, k and v; the attention's output feeds o), so each adapter saves no
activation of its own: 3 of 4 saved (tokens x hidden) tensors per layer gone.

The hash is murmur3's 32-bit finaliser of (index * golden ratio + key): a few integer operations per element,
so the kernel runs at memory speed (Philox's tl.rand costs ~4x that). One definition, two implementations: a
Triton kernel and the same arithmetic in torch ops (CPU, or where Triton cannot compile); the kernel is checked
against the torch version on first use and not used if they differ.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .kinds import Outcome

_BLOCK = 4096
_U32 = 0xFFFFFFFF


class DropoutSeeds:
    """One device counter shared by every HashDropout: each site draws from (counter, site)."""

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


def threshold(p: float) -> int:
    """Keep an element when its 32-bit hash is >= this: probability 1 - p."""
    return min(int(p * 2**32), _U32)


def triton_hash() -> Any:
    """The hash as a Triton function, for kernels that draw the mask themselves (this one, lora_fused.py):
    keep_bits(idx, seed_ptr, site) -> uint32 hash of element indices `idx` (int32 or int64, taken mod 2**32)."""
    if not _HASH:
        import triton
        import triton.language as tl

        # no annotations: Triton reads them as types (and `from __future__ import annotations` makes them strings)
        @triton.jit
        def keep_bits(idx, seed_ptr, site):  # type: ignore[no-untyped-def]
            key = ((tl.load(seed_ptr) * 1000003 + site) & 0xFFFFFFFF).to(tl.uint32)
            h = idx.to(tl.uint32) * 0x9E3779B1 + key  # uint32 arithmetic wraps: the torch version masks to 32 bits
            h ^= h >> 16
            h *= 0x85EBCA6B
            h ^= h >> 13
            h *= 0xC2B2AE35
            h ^= h >> 16
            return h

        _HASH.append(keep_bits)
    return _HASH[0]


_HASH: list[Any] = []


def _triton_kernel() -> Any:
    import triton
    import triton.language as tl

    keep_bits = triton_hash()

    @triton.jit
    def hash_dropout(x_ptr, y_ptr, seed_ptr, site, n, cut, scale, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < n
        h = keep_bits(offs, seed_ptr, site)
        x = tl.load(x_ptr + offs, mask=inside, other=0.0)
        keep = h.to(tl.int64) >= cut
        tl.store(y_ptr + offs, tl.where(keep, x * scale, 0.0).to(y_ptr.dtype.element_ty), mask=inside)

    return hash_dropout


def keep_mask(seed: torch.Tensor, site: int, x: torch.Tensor, p: float) -> torch.Tensor:
    """The keep-mask in torch ops (int64 holding 32-bit values): on any device, no host sync."""
    key = (seed.to(x.device) * 1_000_003 + site) & _U32
    h = (torch.arange(x.numel(), device=x.device, dtype=torch.int64).view(x.shape) * 0x9E3779B1 + key) & _U32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _U32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _U32
    h ^= h >> 16
    return h >= threshold(p)


_KERNEL: list[Any] = []  # [kernel] once checked, [None] where Triton cannot compile it or disagrees (torch then)


def _launch(kernel: Any, x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
    x = x.contiguous()
    y = torch.empty_like(x)
    n = x.numel()
    kernel[((n + _BLOCK - 1) // _BLOCK,)](x, y, seed, site, n, threshold(p), 1.0 / (1.0 - p), BLOCK=_BLOCK,
                                          num_warps=8)
    return y


def _torch(x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
    return x * keep_mask(seed, site, x, p).to(x.dtype) * (1.0 / (1.0 - p))


def _kernel_for(x: torch.Tensor, seed: torch.Tensor) -> Any:
    """The Triton kernel, compiled and checked against the torch arithmetic once; None: use the torch ops."""
    if not _KERNEL:
        try:
            kernel = _triton_kernel()
            probe = torch.randn(3 * _BLOCK + 77, device=x.device, dtype=torch.bfloat16)
            same = all(torch.equal(_launch(kernel, probe, seed, s, 0.3), _torch(probe, seed, s, 0.3)) for s in (0, 5))
            _KERNEL.append(kernel if same else None)
        except Exception:
            _KERNEL.append(None)
    return _KERNEL[0]


def hash_dropout(x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
    """x with elements zeroed with probability p and the rest scaled by 1/(1-p); the mask depends only on
    (seed, site, element index), so the same call gives the same mask every time (no RNG state)."""
    kernel = _kernel_for(x, seed) if x.is_cuda else None
    return _launch(kernel, x, seed, site, p) if kernel is not None else _torch(x, seed, site, p)


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


class _DropLinear(torch.autograd.Function):
    """F.linear(dropout(x), a) saving x (already saved by its other users), not dropout(x)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, a: torch.Tensor, seed: torch.Tensor, site: int, p: float,
                dtype: torch.dtype) -> torch.Tensor:
        xc, ac = x.to(dtype), a.to(dtype)  # what autocast does: the matmul in the compute dtype
        ctx.save_for_backward(xc, ac)
        ctx.seed, ctx.site, ctx.p, ctx.dtypes = seed, site, p, (x.dtype, a.dtype)
        return F.linear(hash_dropout(xc, seed, site, p), ac)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        xc, ac = ctx.saved_tensors
        g = grad.to(ac.dtype)
        h = hash_dropout(xc, ctx.seed, ctx.site, ctx.p)  # the forward's mask, rebuilt
        da = g.reshape(-1, g.shape[-1]).t().matmul(h.reshape(-1, h.shape[-1])).to(ctx.dtypes[1])
        dx = hash_dropout(g.matmul(ac), ctx.seed, ctx.site, ctx.p).to(ctx.dtypes[0])
        return dx, da, None, None, None, None


def drop_linear(x: torch.Tensor, a: torch.Tensor, drop: Any, dtype: torch.dtype | None) -> torch.Tensor:
    """F.linear(drop(x), a) in `dtype` (the autocast dtype; None: a's): through DropLinear when `drop` is an active
    HashDropout, else as written."""
    if isinstance(drop, HashDropout) and drop.training and drop.p > 0:
        return _DropLinear.apply(x, a, drop.seeds.base, drop.at, drop.p, dtype or a.dtype)
    return F.linear(drop(x), a) if dtype is not None else F.linear(drop(x).to(a.dtype), a)


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
    how = ""
    if seeds.base.is_cuda:
        how = (" (Triton kernel)" if _kernel_for(torch.empty(1, device=seeds.base.device), seeds.base) is not None
               else " (torch ops: no Triton kernel that matches them)")
    return Outcome(True, f"{len(lora)} LoRA dropouts counter-based{how}")
