"""Packed rows through flash attention's variable-length kernel: each document attends to itself only.

Packing puts several documents in one row and restarts the positions with each. transformers then builds a
(batch, 1, T, T) block-diagonal mask from the positions (masking_utils.find_packed_sequence_indices), and with a mask
SDPA cannot take its flash kernel: it runs the memory-efficient one over all T x T scores. Here the row's documents
go to flash attention's varlen kernel as `cu_seqlens` (cumulative document starts, computed on the host from the
CPU position ids), so the kernel skips the blocks between documents: the same function as the masked SDPA (a
test holds them equal), a fraction of its work.

`cu_seqlens` reaches the attention through the model's own kwargs (`cu_seq_lens_q`, transformers' flash-attention
keyword); a call without it (eval, generation), or with what the kernel does not do (dropout, a sliding window,
soft-capping, a dtype other than fp16/bf16, a head size over 256) is plain SDPA with transformers' mask. Off the GPU the varlen call runs a
per-document SDPA reference, so CI checks the wiring without a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .kinds import Outcome
from .plan import flash_takes_head_dim

NAME = "envdoctor_varlen"
KEY = "cu_seqlens"  # the micro-batch's key for the document boundaries


def doc_starts(position_ids: torch.Tensor) -> torch.Tensor:
    """Where a document starts in the flattened batch: each row's first token and wherever the position does not
    continue (transformers' rule for packed rows)."""
    pos = position_ids.reshape(position_ids.shape[0], -1)
    new = torch.ones_like(pos, dtype=torch.bool)
    new[:, 1:] = pos[:, 1:] != pos[:, :-1] + 1
    return new.reshape(-1).nonzero().squeeze(1)


def cu_seqlens(position_ids: torch.Tensor, slots: int | None = None, max_len: int | None = None) -> torch.Tensor:
    """The int32 cumulative document boundaries [0, ..., B*T] of a CPU micro-batch.

    `max_len` (doc_bound: the data's longest document) cuts longer segments, which only padding makes, into pieces
    of at most that: the kernel's grid follows the longest document, not the row. `slots` pads the boundaries to a
    fixed length with empty documents (a replayed graph needs one shape)."""
    starts = doc_starts(position_ids)
    total = position_ids.numel()
    if max_len is not None:
        lengths = torch.diff(starts, append=torch.tensor([total]))
        pieces = (lengths + max_len - 1) // max_len
        first = torch.cumsum(pieces, 0) - pieces
        seg = torch.repeat_interleave(torch.arange(len(starts)), pieces)
        starts = starts[seg] + (torch.arange(int(pieces.sum())) - first[seg]) * max_len
    cu = torch.cat([starts.to(torch.int32), torch.tensor([total], dtype=torch.int32)])
    if slots is not None:
        if len(cu) > slots + 1:
            raise ValueError(f"{len(cu) - 1} documents in a micro-batch of at most {slots}")
        cu = torch.cat([cu, cu[-1:].repeat(slots + 1 - len(cu))])
    return cu


def doc_bound(position_ids: Sequence[Sequence[int]]) -> int:
    """A bound on the longest document in the data: every micro-batch's max_len (a graph's shapes cannot follow
    the batch). A document's positions count up by one from where it starts (>= 0), so none is longer than the
    largest position + 1."""
    return max([max(p) + 1 for p in position_ids if p] + [1])


def slots_for(position_ids: Sequence[Sequence[int]], batch: int, width: int, max_len: int) -> int:
    """The most documents a micro-batch of `batch` rows padded to `width` can hold: the `batch` fullest rows
    together, each with the pieces of max_len its padding can be cut into."""
    counts = sorted((len(doc_starts(torch.tensor([p]))) for p in position_ids if p), reverse=True)
    return sum(counts[:batch]) + min(batch, len(counts)) * -(-width // max_len)


class _FlashVarlen(torch.autograd.Function):
    """Causal flash attention per document of the flattened (tokens, heads, dim) q/k/v; GQA in the kernel."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, max_len: int,
                scale: float) -> torch.Tensor:
        out, lse, seed, offset, _ = torch.ops.aten._flash_attention_forward(
            q, k, v, cu, cu, max_len, max_len, 0.0, True, False, scale=scale)
        ctx.save_for_backward(q, k, v, out, lse, cu, seed, offset)
        ctx.max_len, ctx.scale = max_len, scale
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        q, k, v, out, lse, cu, seed, offset = ctx.saved_tensors
        dq, dk, dv = torch.ops.aten._flash_attention_backward(
            grad.contiguous(), q, k, v, out, lse, cu, cu, ctx.max_len, ctx.max_len, 0.0, True, seed, offset,
            scale=ctx.scale)
        return dq, dk, dv, None, None, None


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, scale: float) -> torch.Tensor:
    """The same function, one causal SDPA per document (the path off the GPU)."""
    groups = q.shape[1] // k.shape[1]
    out = []
    bounds = cu.tolist()
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b <= a:
            continue
        qd, kd, vd = (t[a:b].transpose(0, 1) for t in (q, k, v))
        kd, vd = kd.repeat_interleave(groups, 0), vd.repeat_interleave(groups, 0)
        out.append(F.scaled_dot_product_attention(qd, kd, vd, is_causal=True, scale=scale).transpose(0, 1))
    return torch.cat(out)


def attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
              **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention interface: (batch, heads, T, dim) in, (batch, T, heads, dim) out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cu, max_len = kwargs.get("cu_seq_lens_q"), kwargs.get("max_length_q")
    d = query.shape[-1]
    if (cu is None or dropout or kwargs.get("sliding_window") or kwargs.get("softcap")
            or query.shape[2] != key.shape[2]
            or (query.is_cuda and (query.dtype not in (torch.float16, torch.bfloat16) or not flash_takes_head_dim(d)))):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    b, h, t, _ = query.shape
    scale = scaling if scaling is not None else d ** -0.5
    q, k, v = (x.transpose(1, 2).reshape(b * t, x.shape[1], d) for x in (query, key, value))
    if q.is_cuda:
        out = _FlashVarlen.apply(q, k, v, cu, int(max_len or t), scale)
    else:
        out = _reference(q, k, v, cu, scale)
    return out.view(b, t, h, d), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # the fallback's mask: the SDPA one


def _matches_sdpa(device: torch.device, dtype: torch.dtype) -> Outcome:
    """Flash varlen against the per-document SDPA on this GPU: three documents in a row of 256 and three empty ones
    (a graph's fixed slots), GQA, forward and backward."""
    g = torch.Generator(device="cpu").manual_seed(0)
    q = torch.randn(256, 8, 64, generator=g).to(device, dtype).requires_grad_()
    k = torch.randn(256, 2, 64, generator=g).to(device, dtype).requires_grad_()
    v = torch.randn(256, 2, 64, generator=g).to(device, dtype).requires_grad_()
    pos = torch.cat([torch.arange(100), torch.arange(60), torch.arange(96)])[None]
    cu = cu_seqlens(pos, slots=6).to(device)
    out = _FlashVarlen.apply(q, k, v, cu, 256, 0.125)
    out.float().square().sum().backward()
    got = [out.detach().float(), q.grad.float(), k.grad.float()]  # type: ignore[union-attr,attr-defined]
    q.grad = k.grad = v.grad = None
    ref = _reference(q, k, v, cu, 0.125)
    ref.float().square().sum().backward()
    want = [ref.detach().float(), q.grad.float(), k.grad.float()]  # type: ignore[union-attr,attr-defined]
    for a, b_, name in zip(got, want, ("output", "q gradient", "k gradient"), strict=True):
        err = float((a - b_).abs().max() / b_.abs().max().clamp(min=1e-6))
        if not err < 2e-2:
            return Outcome(False, f"flash varlen's {name} differs from SDPA by {err:.2%}")
    return Outcome(True, "")


def use_varlen(model: Any) -> Outcome:
    """Route the model's attention through `attention` (flash varlen when the batch says where documents start);
    refused, changing nothing, where transformers cannot switch the implementation or (on a GPU) the kernel does
    not match SDPA."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = getattr(base, "config", None)
    if getattr(cfg, "_attn_implementation", None) != "sdpa" or not hasattr(base, "set_attn_implementation"):
        return Outcome(False, f"varlen attention off: the model's attention is "
                              f"{getattr(cfg, '_attn_implementation', None)!r}, not sdpa")
    param = next(base.parameters())
    if param.is_cuda:
        if not torch.backends.cuda.is_flash_attention_available():
            return Outcome(False, "varlen attention off: this torch has no flash attention kernel")
        try:
            ok, why = _matches_sdpa(param.device, torch.bfloat16)
        except Exception as e:  # no kernel for this GPU, or another aten signature
            return Outcome(False, f"varlen attention off: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
        if not ok:
            return Outcome(False, f"varlen attention off: {why}")
    try:
        _register()
        base.set_attn_implementation(NAME)
    except Exception as e:
        return Outcome(False, f"varlen attention off: transformers refused it ({type(e).__name__}: {e})")
    return Outcome(True, "varlen attention: packed documents through flash attention, no T x T mask")


def active(model: Any) -> bool:
    """Whether the model's attention is this module's (use_varlen succeeded): the loop then sends cu_seqlens."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(getattr(base, "config", None), "_attn_implementation", None) == NAME
