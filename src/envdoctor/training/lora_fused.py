"""One autograd step for NF4 linears on one input and their LoRA adapters: x @ W.T + s * (dropout(x) @ A.T) @ B.T.

Why: at batch 4 x 2048 tokens the adapter's side of a Llama-8B layer costs more GPU time than it computes
(benchmarks/trainer_NOTES.md, issue 17, third session): each of q/k/v/o ran a dropout kernel (x read, the dropped
copy written), LoRA A on that copy (read again), LoRA B, an add of the scaled branch into the base output, and in
the backward the mask twice more, a (tokens x hidden) product for the input's gradient, a masking kernel on it and
an add into the base's gradient: ~0.9 ms a layer for q/k/v alone, all memory traffic over 64 MiB tensors.

Here the mask is drawn inside the matmuls (the counter-based hash of dropout.py, so it is the same mask as
HashDropout's, rebuilt in the backward, never stored):
- forward: z = dropout(x) @ A.T in one kernel that reads x once; the base matmul adds s * (z @ B.T) in its
  epilogue (`addmm` with beta = s), so the branch is never a separate tensor added afterwards;
- backward: dA = gz.T @ dropout(x) in one kernel reading x once (split over tokens, partial sums added in fp32);
  the input's gradient is g @ W, and dropout(gz @ A) is added into it in place by one kernel (no product tensor).
Linears of a layer that read the same input (q/k/v, gate/up: lean._Siblings) are one step: their input gradients
accumulate in one buffer (`addmm_`), not one tensor each that autograd adds up (bench_lora_parts.py, H200, b4: q/k/v's
input gradient 778 us as 3 matmuls + 2 adds, 626 us as a matmul and 2 `addmm_`).
The arithmetic is peft's, in a different order (fp32 accumulation across the branch, one bf16 rounding where there
were several). The Triton kernels are used only for bf16/fp16 CUDA tensors and after they agree with the torch
ops (the same functions composed from dropout.hash_dropout and matmuls, which is also the CPU path) on a probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .dropout import hash_dropout, threshold


class Ops(Protocol):
    """The three adapter-side products, with the dropout mask of (seed, site, p) applied to x's elements."""

    def drop_a(self, x: torch.Tensor, a: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
        """dropout(x) @ a.T: (M, K) x (R, K) -> (M, R) in x's dtype."""

    def drop_a_grad(self, gz: torch.Tensor, x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
        """gz.T @ dropout(x): (M, R) x (M, K) -> (R, K), at least fp32."""

    def add_drop_gz_a(self, dx: torch.Tensor, gz: torch.Tensor, a: torch.Tensor, seed: torch.Tensor, site: int,
                      p: float) -> None:
        """dx += dropout(gz @ a) in place: (M, K) += mask * ((M, R) x (R, K))."""


def _drop(x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
    return hash_dropout(x, seed, site, p) if p > 0 else x


class TorchOps:
    """The reference: dropout.hash_dropout and matmuls (the CPU path, and the GPU's where Triton is not used)."""

    def drop_a(self, x: torch.Tensor, a: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
        return torch.mm(_drop(x, seed, site, p), a.t())

    def drop_a_grad(self, gz: torch.Tensor, x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
        return torch.mm(gz.t(), _drop(x, seed, site, p)).to(torch.promote_types(x.dtype, torch.float32))

    def add_drop_gz_a(self, dx: torch.Tensor, gz: torch.Tensor, a: torch.Tensor, seed: torch.Tensor, site: int,
                      p: float) -> None:
        dx.add_(_drop(torch.mm(gz, a), seed, site, p))


def _kernels() -> tuple[Any, Any, Any]:
    import triton
    import triton.language as tl

    from .dropout import triton_hash

    keep_bits = triton_hash()

    # no annotations: Triton reads them as types (and `from __future__ import annotations` makes them strings)
    @triton.jit
    def drop_a_fwd(x_ptr, a_ptr, part_ptr, seed_ptr, site, M, K, R, cols_per, cut, scale,  # type: ignore[no-untyped-def]
                   DROP: tl.constexpr, RP: tl.constexpr, BM: tl.constexpr, BK: tl.constexpr):
        rows = tl.program_id(0) * BM + tl.arange(0, BM)
        split = tl.program_id(1)
        rr = tl.arange(0, RP)
        acc = tl.zeros((BM, RP), dtype=tl.float32)
        for k0 in range(split * cols_per, tl.minimum(K, (split + 1) * cols_per), BK):
            cols = k0 + tl.arange(0, BK)
            inside = (rows[:, None] < M) & (cols[None, :] < K)
            x = tl.load(x_ptr + (rows.to(tl.int64) * K)[:, None] + cols[None, :], mask=inside, other=0.0)
            if DROP:
                h = keep_bits(rows[:, None].to(tl.uint32) * K.to(tl.uint32) + cols[None, :].to(tl.uint32), seed_ptr, site)
                x = tl.where(h >= cut.to(tl.uint32), x * scale, 0.0).to(x_ptr.dtype.element_ty)
            a = tl.load(a_ptr + rr[:, None] * K + cols[None, :], mask=(rr[:, None] < R) & (cols[None, :] < K),
                        other=0.0)
            acc += tl.dot(x, tl.trans(a))
        tl.store(part_ptr + split * M * R + rows[:, None].to(tl.int64) * R + rr[None, :], acc,
                 mask=(rows[:, None] < M) & (rr[None, :] < R))

    @triton.jit
    def drop_a_bwd(gz_ptr, x_ptr, part_ptr, seed_ptr, site, M, K, R, rows_per, cut, scale,  # type: ignore[no-untyped-def]
                   DROP: tl.constexpr, RP: tl.constexpr, BM: tl.constexpr, BK: tl.constexpr):
        cols = tl.program_id(0) * BK + tl.arange(0, BK)
        split = tl.program_id(1)
        rr = tl.arange(0, RP)
        acc = tl.zeros((RP, BK), dtype=tl.float32)
        for m0 in range(split * rows_per, tl.minimum(M, (split + 1) * rows_per), BM):
            rows = m0 + tl.arange(0, BM)
            inside = (rows[:, None] < M) & (cols[None, :] < K)
            x = tl.load(x_ptr + (rows.to(tl.int64) * K)[:, None] + cols[None, :], mask=inside, other=0.0)
            if DROP:
                h = keep_bits(rows[:, None].to(tl.uint32) * K.to(tl.uint32) + cols[None, :].to(tl.uint32), seed_ptr, site)
                x = tl.where(h >= cut.to(tl.uint32), x * scale, 0.0).to(x_ptr.dtype.element_ty)
            gz = tl.load(gz_ptr + rows[:, None].to(tl.int64) * R + rr[None, :],
                         mask=(rows[:, None] < M) & (rr[None, :] < R), other=0.0)
            acc += tl.dot(tl.trans(gz), x)
        tl.store(part_ptr + split * R * K + rr[:, None] * K + cols[None, :], acc,
                 mask=(rr[:, None] < R) & (cols[None, :] < K))

    @triton.jit
    def add_drop_gz_a(dx_ptr, gz_ptr, a_ptr, seed_ptr, site, M, K, R, cut, scale,  # type: ignore[no-untyped-def]
                      DROP: tl.constexpr, RP: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
        rows = tl.program_id(0) * BM + tl.arange(0, BM)
        cols = tl.program_id(1) * BN + tl.arange(0, BN)
        rr = tl.arange(0, RP)
        gz = tl.load(gz_ptr + rows[:, None].to(tl.int64) * R + rr[None, :],
                     mask=(rows[:, None] < M) & (rr[None, :] < R), other=0.0)
        a = tl.load(a_ptr + rr[:, None] * K + cols[None, :], mask=(rr[:, None] < R) & (cols[None, :] < K),
                    other=0.0)
        t = tl.dot(gz, a)
        if DROP:
            h = keep_bits(rows[:, None].to(tl.uint32) * K.to(tl.uint32) + cols[None, :].to(tl.uint32), seed_ptr, site)
            t = tl.where(h >= cut.to(tl.uint32), t * scale, 0.0)
        inside = (rows[:, None] < M) & (cols[None, :] < K)
        at = dx_ptr + (rows.to(tl.int64) * K)[:, None] + cols[None, :]
        dx = tl.load(at, mask=inside, other=0.0)
        tl.store(at, (dx.to(tl.float32) + t).to(dx_ptr.dtype.element_ty), mask=inside)

    return drop_a_fwd, drop_a_bwd, add_drop_gz_a


def _rp(r: int) -> int:
    return max(16, 1 << (r - 1).bit_length())  # tl.dot needs each side >= 16 and a power of two


def _split(n: int, parts: int, tile: int) -> tuple[int, int]:
    """(length of each part, number of parts): `n` cut into about `parts` pieces of whole tiles."""
    def up(a: int, b: int) -> int:
        return -(-a // b)

    per = up(up(n, parts), tile) * tile
    return per, up(n, per)


class TritonOps:
    """The same three products as Triton kernels that draw the mask themselves (x read once, nothing dropped
    stored). The two reductions (over the hidden size for z, over tokens for dA) are split so that every SM has
    a few programs streaming x, their fp32 partial sums added by torch; the tile sizes are class attributes
    (benchmarks/bench_lora_parts.py tries others)."""

    FWD = {"BM": 64, "BK": 64, "SPLIT": 4, "num_warps": 8, "num_stages": 3}
    BWD = {"BM": 64, "BK": 128, "SPLIT": 8, "num_warps": 4, "num_stages": 3}
    DX = {"BM": 64, "BN": 128, "num_warps": 4, "num_stages": 1}

    def __init__(self) -> None:
        self.fwd, self.bwd, self.dx = _kernels()

    def _args(self, p: float) -> tuple[int, float, bool]:
        return (threshold(p), 1.0 / (1.0 - p), True) if p > 0 else (0, 1.0, False)

    def drop_a(self, x: torch.Tensor, a: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
        (m, k), r, c = x.shape, a.shape[0], self.FWD
        per, parts = _split(k, c["SPLIT"], c["BK"])
        part = torch.empty((parts, m, r), dtype=torch.float32, device=x.device)
        cut, scale, drop = self._args(p)
        self.fwd[(-(-m // c["BM"]), parts)](x, a, part, seed, site, m, k, r, per, cut, scale, DROP=drop, RP=_rp(r),
                                           BM=c["BM"], BK=c["BK"], num_warps=c["num_warps"],
                                           num_stages=c["num_stages"])
        return (part[0] if parts == 1 else part.sum(0)).to(x.dtype)

    def drop_a_grad(self, gz: torch.Tensor, x: torch.Tensor, seed: torch.Tensor, site: int, p: float) -> torch.Tensor:
        (m, k), r, c = x.shape, gz.shape[1], self.BWD
        per, parts = _split(m, c["SPLIT"], c["BM"])
        part = torch.empty((parts, r, k), dtype=torch.float32, device=x.device)
        cut, scale, drop = self._args(p)
        self.bwd[(-(-k // c["BK"]), parts)](gz, x, part, seed, site, m, k, r, per, cut, scale, DROP=drop, RP=_rp(r),
                                           BM=c["BM"], BK=c["BK"], num_warps=c["num_warps"],
                                           num_stages=c["num_stages"])
        return part[0] if parts == 1 else part.sum(0)

    def add_drop_gz_a(self, dx: torch.Tensor, gz: torch.Tensor, a: torch.Tensor, seed: torch.Tensor, site: int,
                      p: float) -> None:
        (m, k), r, c = dx.shape, a.shape[0], self.DX
        cut, scale, drop = self._args(p)
        self.dx[(-(-m // c["BM"]), -(-k // c["BN"]))](dx, gz, a, seed, site, m, k, r, cut, scale, DROP=drop,
                                                     RP=_rp(r), BM=c["BM"], BN=c["BN"], num_warps=c["num_warps"],
                                                     num_stages=c["num_stages"])


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    return bool((got.float() - want.float()).abs().max() <= 2e-2 * want.float().abs().max() + 1e-3)


_CHOSEN: dict[tuple[str, torch.dtype], Ops] = {}


def ops_for(x: torch.Tensor) -> Ops:
    """The Triton kernels for bf16/fp16 on CUDA once they agree with the torch ops on a probe (every product,
    with and without dropout, a rank that is not a power of two, rows and columns off the tile sizes); else the
    torch ops."""
    key = (x.device.type, x.dtype)
    if key not in _CHOSEN:
        _CHOSEN[key] = TorchOps()
        if x.is_cuda and x.dtype in (torch.bfloat16, torch.float16):
            try:
                fast = TritonOps()
                if _agree(fast, TorchOps(), x.device, x.dtype):
                    _CHOSEN[key] = fast
            except Exception:  # no Triton, or it cannot compile these kernels here: the torch ops
                pass
    return _CHOSEN[key]


def _agree(fast: Ops, ref: Ops, device: torch.device, dtype: torch.dtype) -> bool:
    g = torch.Generator(device=device).manual_seed(0)
    m, k, r = 200, 320, 24
    x = torch.randn(m, k, device=device, dtype=dtype, generator=g)
    a = torch.randn(r, k, device=device, dtype=dtype, generator=g) * 0.05
    gz = torch.randn(m, r, device=device, dtype=dtype, generator=g)
    seed = torch.full((), 3, dtype=torch.int64, device=device)
    for p in (0.0, 0.3):
        if not (_close(fast.drop_a(x, a, seed, 1, p), ref.drop_a(x, a, seed, 1, p))
                and _close(fast.drop_a_grad(gz, x, seed, 1, p), ref.drop_a_grad(gz, x, seed, 1, p))):
            return False
        d1, d2 = x.clone(), x.clone()
        fast.add_drop_gz_a(d1, gz, a, seed, 1, p)
        ref.add_drop_gz_a(d2, gz, a, seed, 1, p)
        if not _close(d1, d2):
            return False
    return True


@dataclass(frozen=True)
class Member:
    """One NF4 linear that reads the shared input: its weight (dequantised by `dequant`), its frozen bias if any
    (Qwen2's q/k/v), and its LoRA adapter's scale and dropout (seed, site, p) if it has one (the adapter's A and B
    go to `linears` apart: autograd's inputs)."""

    weight: torch.Tensor
    qs: Any
    dequant: Any
    lora: bool = False
    s: float = 1.0
    seed: Any = None  # the LoRA dropout's seed tensor (unread when p = 0)
    site: int = 0
    p: float = 0.0
    bias: torch.Tensor | None = None  # frozen: no gradient


class _Shared(torch.autograd.Function):
    """x @ dequant(W_i).T (+ s_i * (dropout_i(x) @ A_i.T) @ B_i.T) (+ bias_i) for every member i, in `dtype`.

    Saves x once (already saved by its other users: the norm's output feeds q, k and v) and each adapter's
    (tokens x r) z, never a dropped copy of x or a bf16 weight. The backward accumulates the input's gradient of
    all members in one buffer (`addmm_`, the products' sum in the matmul's epilogue) where autograd would make one
    per member and add them: two (tokens x hidden) adds fewer for q/k/v, one for gate/up."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, members: tuple[Member, ...], dtype: torch.dtype,
                *adapters: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.autocast(x.device.type, enabled=False):
            x2 = x.reshape(-1, x.shape[-1]).to(dtype).contiguous()
            ops = ops_for(x2) if any(m.lora for m in members) else None
            outs, saved, pairs = [], [], iter(zip(adapters[::2], adapters[1::2], strict=True))
            for m in members:
                w = m.dequant(m.weight, m.qs, dtype)
                if m.lora:
                    a, b = next(pairs)
                    ac, bc = a.to(dtype), b.to(dtype)
                    z = ops.drop_a(x2, ac, m.seed, m.site, m.p)  # type: ignore[union-attr]
                    out = torch.addmm(torch.mm(z, bc.t()), x2, w.t(), beta=m.s)
                    if m.bias is not None:
                        out.add_(m.bias.to(dtype))
                    saved += [z, ac, bc]
                else:
                    out = torch.mm(x2, w.t()) if m.bias is None else torch.addmm(m.bias.to(dtype), x2, w.t())
                outs.append(out.view(*x.shape[:-1], out.shape[-1]))
        # x only where an adapter's gradient needs it: plain members (gate/up) need only their weights, and their
        # input is kept by nothing else (2 GiB at batch 4 x 2048 on a Llama-8B when it was saved regardless)
        ctx.save_for_backward(*([x2] if ops is not None else []), *saved)
        ctx.rest = (members, ops, x.shape, x.dtype, x2.dtype, [t.dtype for t in adapters])
        return tuple(outs)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[Any, ...]:
        members, ops, shape, x_dtype, dtype, dtypes = ctx.rest
        saved = list(ctx.saved_tensors)
        x2 = saved.pop(0) if ops is not None else None
        need = ctx.needs_input_grad
        dx: torch.Tensor | None = None
        dadapters: list[torch.Tensor | None] = []
        with torch.autocast(grads[0].device.type, enabled=False):
            for m, grad in zip(members, grads, strict=True):
                g = grad.reshape(-1, grad.shape[-1]).to(dtype)
                if need[0]:
                    w = m.dequant(m.weight, m.qs, dtype)
                    dx = torch.mm(g, w) if dx is None else dx.addmm_(g, w)
                if not m.lora:
                    continue
                z, ac, bc = saved[:3]
                del saved[:3]
                i = 3 + len(dadapters)  # A's and B's places among forward's inputs
                gz = torch.mm(g, bc).mul_(m.s)
                dadapters.append(ops.drop_a_grad(gz, x2, m.seed, m.site, m.p).to(dtypes[i - 3]) if need[i] else None)
                dadapters.append(torch.mm(g.t(), z).to(dtypes[i - 2]).mul_(m.s) if need[i + 1] else None)
                if dx is not None:
                    ops.add_drop_gz_a(dx, gz, ac, m.seed, m.site, m.p)
        return (None if dx is None else dx.view(shape).to(x_dtype), None, None, *dadapters)


def linears(x: torch.Tensor, members: tuple[Member, ...], adapters: tuple[torch.Tensor, ...],
            dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Every member's output on the shared input `x` in one autograd step; `adapters` are the LoRA members' A and
    B, in order (A0, B0, A1, B1, ...)."""
    return _Shared.apply(x, members, dtype, *adapters)


def lora_nf4(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor, qs: Any, dequant: Any,
             s: float, seed: torch.Tensor, site: int, p: float, dtype: torch.dtype) -> torch.Tensor:
    """The NF4 linear plus its LoRA branch in one autograd step (p = 0: no dropout; `seed` is then not read)."""
    return linears(x, (Member(weight, qs, dequant, True, s, seed, site, p),), (a, b), dtype)[0]
