"""NF4 codes to bf16/fp16 in one Triton kernel: bitsandbytes' arithmetic, at memory speed.

bitsandbytes' kDequantizeBlockwise runs at about half the H200's memory bandwidth (benchmarks/trainer_NOTES.md,
issue 17: 17 us for a 16.8M-element weight), and a checkpointed QLoRA step dequantises every weight three
times. This kernel computes what it computes, element by element: value = code[nibble] * absmax[block] in fp32,
rounded once to the output dtype, high nibble first. lean.apply_lean uses it only where its output equals
bitsandbytes' own dequantisation bit for bit on the model's weights, else bitsandbytes' kernel.
"""

from __future__ import annotations

from typing import Any

import torch

_BYTES = 2048  # packed bytes per program: 4096 elements


def _kernel() -> Any:
    import triton
    import triton.language as tl

    # no annotations: Triton reads them as types (and `from __future__ import annotations` makes them strings)
    @triton.jit
    def nf4_dequant(codes_ptr, absmax_ptr, table_ptr, out_ptr, n_bytes, BLOCKSIZE: tl.constexpr,  # type: ignore[no-untyped-def]
                    BYTES: tl.constexpr):
        j = tl.program_id(0) * BYTES + tl.arange(0, BYTES)
        inside = j < n_bytes
        b = tl.load(codes_ptr + j, mask=inside, other=0).to(tl.int32)
        scale = tl.load(absmax_ptr + (j * 2) // BLOCKSIZE, mask=inside, other=0.0)
        hi = tl.load(table_ptr + (b >> 4)) * scale
        lo = tl.load(table_ptr + (b & 15)) * scale
        o = tl.program_id(0) * 2 * BYTES + tl.arange(0, 2 * BYTES)
        tl.store(out_ptr + o, tl.interleave(hi, lo).to(out_ptr.dtype.element_ty), mask=o < 2 * n_bytes)

    return nf4_dequant


_COMPILED: list[Any] = []


def dequantize(codes: torch.Tensor, absmax: torch.Tensor, table: torch.Tensor, blocksize: int,
               out: torch.Tensor) -> None:
    """Fill `out` (n elements) from n/2 packed bytes `codes`, fp32 `absmax` per `blocksize` elements and the 16
    fp32 code values `table` (bitsandbytes' QuantState.code)."""
    if not _COMPILED:
        _COMPILED.append(_kernel())
    n_bytes = codes.numel()
    _COMPILED[0][(-(-n_bytes // _BYTES),)](codes, absmax, table, out, n_bytes, BLOCKSIZE=blocksize, BYTES=_BYTES)
