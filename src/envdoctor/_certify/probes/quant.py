"""Tier 2 on the GPU: bitsandbytes loads its CUDA library, NF4 quantize + matmul is right, an 8-bit optimizer steps."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..params import ProbeParams
from ..registry import Outcome, ProbeContext, register_probe

Optimizer8bit = Literal["PagedAdamW8bit", "AdamW8bit", "Adam8bit", "PagedAdam8bit", "Lion8bit", "PagedLion8bit",
                        "SGD8bit", "RMSprop8bit"]


class Optim8bitParams(ProbeParams):
    """Params of bnb-8bit-optim: which of bitsandbytes' 8-bit optimizers to step (an allow-list, not a name to look up)."""

    optimizer: Optimizer8bit = Field("PagedAdamW8bit", description="The bitsandbytes.optim class.")


def _native(bnb: object) -> str | None:
    """Why bitsandbytes has no usable native library, or None when it has one."""
    try:
        from bitsandbytes.cextension import lib
    except Exception as e:  # older or newer layouts: let the real calls below decide
        return None if "cextension" in str(e) else f"bitsandbytes.cextension: {e}"
    if "Mock" in type(lib).__name__ or "ErrorHandler" in type(lib).__name__:
        return (f"bitsandbytes {getattr(bnb, '__version__', '?')} could not load a CUDA library for this torch "
                f"({type(lib).__name__}); its wheel may lack the build for torch's CUDA version")
    return None


@register_probe("bnb-nf4-matmul", 2, gpu="required", timeout=240.0)
def nf4_matmul(ctx: ProbeContext) -> Outcome:
    """NF4 quantize a weight with bitsandbytes and run a 4-bit matmul on the GPU; compare to the dequantized weight."""
    import bitsandbytes as bnb
    import torch

    why = _native(bnb)
    if why:
        return Outcome.failed(why)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    torch.manual_seed(0)
    layer = bnb.nn.Linear4bit(256, 128, bias=False, compute_dtype=dtype, quant_type="nf4")
    w = torch.randn(128, 256) * 0.02
    layer.weight = bnb.nn.Params4bit(w, requires_grad=False, quant_type="nf4")
    layer = layer.cuda()  # quantizes on the move to the GPU
    x = torch.randn(8, 256, device="cuda", dtype=dtype)
    y = layer(x)
    weight: Any = layer.weight
    deq = bnb.functional.dequantize_4bit(weight.data, weight.quant_state).to(dtype)
    ref = x @ deq.t()
    torch.cuda.synchronize()
    if not torch.isfinite(y).all():
        return Outcome.failed("NF4 matmul produced non-finite values")
    rel = float((y.float() - ref.float()).norm() / ref.float().norm())
    qerr = float((deq.float().cpu() - w).norm() / w.norm())
    if rel > 0.05 or qerr > 0.2:
        return Outcome.failed(f"NF4 matmul off by {rel:.3g} (quantization error {qerr:.3g})", rel_error=rel,
                              quant_error=qerr)
    return Outcome.passed(f"bitsandbytes {bnb.__version__} NF4 {str(dtype).replace('torch.', '')}: matmul error "
                          f"{rel:.1e}, quantization error {qerr:.2f}", rel_error=rel, quant_error=qerr,
                          bitsandbytes=bnb.__version__)


@register_probe("bnb-8bit-optim", 2, gpu="required", timeout=240.0, params=Optim8bitParams)
def adam8bit_step(ctx: ProbeContext) -> Outcome:
    """One bitsandbytes 8-bit AdamW step (paged, as optim='paged_adamw_8bit' uses) changes the weights, finitely."""
    import bitsandbytes as bnb
    import torch

    why = _native(bnb)
    if why:
        return Outcome.failed(why)
    torch.manual_seed(0)
    model = torch.nn.Linear(128, 64).cuda()  # 8192 weights: above bnb's min_8bit_size (4096), so 8-bit state
    name = Optim8bitParams.model_validate(ctx.params).optimizer
    opt_cls = getattr(bnb.optim, name, None)
    if opt_cls is None:
        return Outcome.failed(f"bitsandbytes {bnb.__version__} has no optimizer {name}")
    opt = opt_cls(model.parameters(), lr=1e-3)
    before = model.weight.detach().clone()
    loss = model(torch.randn(16, 128, device="cuda")).pow(2).mean()
    loss.backward()
    opt.step()
    torch.cuda.synchronize()
    state = opt.state[model.weight]
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in state.values() if torch.is_tensor(v) and v.numel() > 1})
    moved = float((model.weight.detach() - before).abs().max())
    if not torch.isfinite(model.weight).all() or moved == 0.0:
        return Outcome.failed(f"{name} step left the weights {'non-finite' if moved else 'unchanged'}")
    if "uint8" not in dtypes:
        return Outcome.failed(f"{name} kept no 8-bit state (state dtypes: {', '.join(dtypes)})", state_dtypes=dtypes)
    return Outcome.passed(f"{name} step: weights moved by up to {moved:.1e}, state {', '.join(dtypes)}",
                          state_dtypes=dtypes, max_update=moved)
