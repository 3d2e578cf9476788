"""The loss and logits' gradient of one chunk of cross-entropy rows, for fast._ChunkedLinearCE.

Why: per chunk of 512 tokens x 128256 logits the torch arithmetic makes an fp32 copy of the logits and runs ~8
elementwise and reduction passes over it (amax, sub, exp, sum, div, the label's -1, the scale, the cast back to
bf16): ~15 ms of a 480 ms step at 8192 tokens on an H200, all memory traffic. On CUDA for bf16/fp16 logits one
Triton kernel (liger-kernel's cross-entropy design) does it instead: a program per row reads the row once for an
online max and sum of exponentials in fp32 (the log-sum-exp), once more to write (softmax - onehot) * scale / n
in place into the same buffer; nothing fp32 of the vocabulary's size is ever made.

The kernel is used only after it agreed with the torch reference (`rows`, also the CPU / fp32 / fp64 path) on a
probe. Nothing on the kernel's path reads a device value on the host (1 / n is a device tensor the kernel loads):
the trainer captures its step in a CUDA graph (graphs.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .data import IGNORE_INDEX

Rows = Callable[[torch.Tensor, torch.Tensor, float, torch.Tensor, bool], tuple[torch.Tensor, torch.Tensor | None]]
"""(logits, labels, scale, inv_n, grad) -> (sum of the rows' losses, gradient of the mean loss or None)."""


def rows(logits: torch.Tensor, labels: torch.Tensor, scale: float, inv_n: torch.Tensor,
         grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The torch reference: the summed cross-entropy of (scale * logits) rows against labels (IGNORE_INDEX rows
    count 0) and, if `grad`, its gradient with respect to `logits` for the mean over n tokens (inv_n = 1 / n, a
    0-d tensor), written over `logits` (consumed either way) and returned. Arithmetic on an fp32 copy of bf16/fp16 logits (fp64 stays
    fp64): peak ~6 bytes a logit for bf16, the 2 of the logits and the 4 of the copy."""
    acc = torch.promote_types(logits.dtype, torch.float32)
    # everything below is in place on the one fp32 copy
    x = logits.to(acc)
    if scale != 1.0:
        x.mul_(scale)
    valid = labels != IGNORE_INDEX
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    target = x.gather(1, safe[:, None]).squeeze(1)
    top = x.amax(dim=-1, keepdim=True)
    x.sub_(top).exp_()
    sums = x.sum(dim=-1, keepdim=True)
    lse = (top + sums.log()).squeeze(1)
    total = ((lse - target) * valid).sum()
    if not grad:
        return total, None
    probs = x.div_(sums)  # softmax
    probs[torch.arange(probs.shape[0], device=probs.device), safe] -= 1.0
    probs.mul_((valid.to(acc) * scale * inv_n.to(acc))[:, None])
    if probs is not logits:  # into the caller's buffer, like the kernel: no third chunk-sized tensor
        logits.copy_(probs)
    return total, logits


def _kernel() -> Any:
    import triton
    import triton.language as tl

    # no annotations: Triton reads them as types (and `from __future__ import annotations` makes them strings)
    @triton.jit
    def ce_rows(x_ptr, stride, lab_ptr, loss_ptr, inv_n_ptr, V, scale,  # type: ignore[no-untyped-def]
                IGNORE: tl.constexpr, GRAD: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        x_ptr += row * stride  # int64: rows x vocab may pass 2**31 elements
        label = tl.load(lab_ptr + row)
        if label == IGNORE:
            if GRAD:
                for off in range(0, V, BLOCK):
                    cols = off + tl.arange(0, BLOCK)
                    tl.store(x_ptr + cols, tl.zeros([BLOCK], dtype=x_ptr.dtype.element_ty), mask=cols < V)
            tl.store(loss_ptr + row, 0.0)
        else:
            m = float("-inf")  # running max and sum of exp(x - m): one read of the row for its log-sum-exp
            d = 0.0
            for off in range(0, V, BLOCK):
                cols = off + tl.arange(0, BLOCK)
                x = tl.load(x_ptr + cols, mask=cols < V, other=float("-inf")).to(tl.float32) * scale
                m_new = tl.maximum(m, tl.max(x, 0))
                d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), 0)
                m = m_new
            lse = m + tl.log(d)
            # masked: a label past the vocabulary reads nothing out of bounds (the torch path raises on it)
            target = tl.load(x_ptr + label, mask=(label >= 0) & (label < V), other=0.0).to(tl.float32) * scale
            if GRAD:  # d(mean loss)/d(logit) = (softmax - onehot) * scale / n, written over the logits
                c = scale * tl.load(inv_n_ptr).to(tl.float32)
                for off in range(0, V, BLOCK):
                    cols = off + tl.arange(0, BLOCK)
                    x = tl.load(x_ptr + cols, mask=cols < V, other=0.0).to(tl.float32) * scale
                    p = tl.exp(x - lse)
                    g = tl.where(cols == label, p - 1.0, p) * c
                    tl.store(x_ptr + cols, g.to(x_ptr.dtype.element_ty), mask=cols < V)
            tl.store(loss_ptr + row, lse - target)

    return ce_rows


def _pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class TritonRows:
    """`rows` as one Triton kernel a row that writes the gradient over the logits (bf16/fp16, CUDA). BLOCK (the
    most columns a program holds at once) and NUM_WARPS are class attributes: benchmarks/bench_loss.py tries
    others; liger's choice (32768, 32) keeps 1024 threads streaming one row."""

    BLOCK = 32768
    NUM_WARPS = 32

    def __init__(self) -> None:
        self.kernel = _kernel()

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, scale: float, inv_n: torch.Tensor,
                 grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same contract as `rows`; the returned gradient is `logits` itself (overwritten), when contiguous."""
        if logits.stride(1) != 1:
            logits = logits.contiguous()
        labels = labels.contiguous()
        n, v = logits.shape
        loss = torch.empty(n, dtype=torch.float32, device=logits.device)
        if n:
            self.kernel[(n,)](logits, logits.stride(0), labels, loss, inv_n, v, scale, IGNORE=IGNORE_INDEX,
                              GRAD=grad, BLOCK=min(self.BLOCK, _pow2(v)), num_warps=self.NUM_WARPS)
        return loss.sum(), logits if grad else None


_CHOSEN: dict[tuple[str, torch.dtype], Rows] = {}


def rows_for(logits: torch.Tensor) -> Rows:
    """The Triton kernel for bf16/fp16 logits on CUDA once it agreed with `rows` on a probe; else `rows`. Chosen
    once per (device, dtype); never probed inside a CUDA graph capture (the probe reads its results on the host),
    where the reference is returned and nothing is cached."""
    key = (str(logits.device), logits.dtype)
    if key in _CHOSEN:
        return _CHOSEN[key]
    if not (logits.is_cuda and logits.dtype in (torch.bfloat16, torch.float16)):
        _CHOSEN[key] = rows
        return rows
    if torch.cuda.is_current_stream_capturing():
        return rows
    chosen: Rows = rows
    try:
        fast = TritonRows()
        if _agree(fast, logits.device, logits.dtype):
            chosen = fast
    except Exception:  # no Triton, or it cannot compile or launch the kernel here: the reference
        pass
    _CHOSEN[key] = chosen
    return chosen


def _close(got: torch.Tensor, want: torch.Tensor, rel: float) -> bool:
    return bool((got.double() - want.double()).abs().max() <= rel * want.double().abs().max() + 1e-12)


def _agree(fast: Rows, device: torch.device, dtype: torch.dtype) -> bool:
    """Both ways on random logits of a vocabulary past one block and off its size, ignored rows, scale != 1."""
    g = torch.Generator(device=device).manual_seed(0)
    n, v = 24, 40_000
    logits = (torch.randn(n, v, device=device, generator=g) * 3).to(dtype)
    labels = torch.randint(0, v, (n,), device=device, generator=g)
    labels[::5] = IGNORE_INDEX
    inv_n = (labels != IGNORE_INDEX).sum().to(torch.float32).reciprocal()
    for grad in (True, False):
        loss, gl = fast(logits.clone(), labels, 0.7, inv_n, grad)
        want, wg = rows(logits.clone(), labels, 0.7, inv_n, grad)
        if not _close(loss, want, 1e-4) or (gl is None) != (wg is None):
            return False
        if gl is not None and wg is not None and not _close(gl, wg, 1e-2):
            return False
    return True
