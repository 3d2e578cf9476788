"""Lean forwards for NF4 linears and their LoRA adapters: bitsandbytes' + peft's arithmetic, less host work.

At batch 1 the QLoRA step is bound by the host, not the GPU (trainer_NOTES.md, run 7: ~150 ms of kernels in a
~290 ms step). Each NF4 matmul went through peft's wrapper, bnb's Linear4bit, `matmul_4bit`, an autograd
Function and three `torch.library` dispatches into Python (~200 us of host time each, ~550 per step). Here one
autograd Function dequantises directly (bitsandbytes' nested absmax, then the 4-bit codes by nf4.py's Triton
kernel or bitsandbytes' own, whichever gives bitsandbytes' values bit for bit) and calls `F.linear`; the LoRA
branch is dropout -> A -> B added with its scale in one `add` (a counter-based dropout and A in one autograd
step that saves A's input, not the dropped copy: dropout.py). Anything unusual (bias, merged or several adapters, extra arguments) takes the original forward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from .kinds import Outcome
from .lora_fused import Member, linears

Dequant = Callable[[torch.Tensor, Any, torch.dtype], torch.Tensor]


def _dequant_public(weight: torch.Tensor, qs: Any, dtype: torch.dtype) -> torch.Tensor:
    from bitsandbytes import functional as bf

    return bf.dequantize_4bit(weight, qs).to(dtype)


def _dequant_cuda_factory(kernel: str = "bnb") -> Dequant | None:
    """bitsandbytes' CUDA dequantisation without the torch.library round trips, if this version has it; `kernel`
    "triton" computes the 4-bit step with nf4.py's kernel instead of bitsandbytes' (the scales stay theirs)."""
    try:
        from bitsandbytes.backends.cuda import ops as cops

        blockwise, nf4 = cops._dequantize_blockwise_impl, cops._dequantize_4bit_impl
    except Exception:  # another bitsandbytes layout: the public function (same result, more host work)
        return None
    four_bit: Callable[..., None] = nf4
    if kernel == "triton":
        from bitsandbytes.functional import get_4bit_type

        from . import nf4 as fast

        table: dict[torch.device, torch.Tensor] = {}

        def triton_nf4(A: torch.Tensor, absmax: torch.Tensor, blocksize: int, quant_type: str, dtype: torch.dtype,
                       out: torch.Tensor) -> None:
            if quant_type != "nf4":
                raise ValueError(f"the Triton kernel dequantises nf4, not {quant_type}")
            if A.device not in table:
                table[A.device] = get_4bit_type("nf4", device=A.device).float()
            # codes stored in another dtype (FSDP's bnb_4bit_quant_storage) are the same bytes, viewed
            fast.dequantize(A if A.dtype == torch.uint8 else A.view(torch.uint8), absmax, table[A.device], blocksize,
                            out)

        four_bit = triton_nf4

    def scales(qs: Any) -> torch.Tensor:
        absmax = qs.absmax
        if qs.nested:
            full = torch.empty(absmax.shape, dtype=torch.float32, device=absmax.device)
            blockwise(absmax, qs.state2.absmax, qs.state2.code, qs.state2.blocksize, torch.float32, out=full)
            absmax = full.add_(qs.offset)
        return absmax

    def dequant(weight: torch.Tensor, qs: Any, dtype: torch.dtype) -> torch.Tensor:
        out = torch.empty(tuple(qs.shape), dtype=dtype, device=weight.device)
        four_bit(weight, scales(qs), qs.blocksize, qs.quant_type, dtype, out=out)
        return out

    def rows(weight: torch.Tensor, qs: Any, dtype: torch.dtype, blocks: int) -> Iterator[tuple[int, torch.Tensor]]:
        # row r of W is codes [r * cols / 2, ...) and scales [r * cols / blocksize, ...): row_blocks() checked that
        # every block boundary is a whole byte and a whole scale block
        absmax, (n_rows, cols), flat = scales(qs), qs.shape, weight.reshape(-1)
        step = -(-n_rows // blocks)
        for r0 in range(0, n_rows, step):
            r1 = min(n_rows, r0 + step)
            out = torch.empty((r1 - r0, cols), dtype=dtype, device=weight.device)
            four_bit(flat[r0 * cols // 2:r1 * cols // 2], absmax[r0 * cols // qs.blocksize:r1 * cols // qs.blocksize],
                qs.blocksize, qs.quant_type, dtype, out=out)
            yield r0, out

    dequant.rows = rows  # type: ignore[attr-defined]
    return dequant


_LARGE = 1 << 25  # elements: the MLP's weights (14336 x 4096 = 58.7M) are large, attention's (16.8M) are not


def row_blocks(m: Any, dequant: Dequant, blocks: int) -> int:
    """How many row blocks `m`'s weight is dequantised in (forward and backward): `blocks` where the weight is
    large, the direct path can slice it and every row is whole bytes of codes and whole scale blocks, else 1."""
    qs = m.weight.quant_state
    n_rows, cols = tuple(qs.shape)
    if (blocks <= 1 or not hasattr(dequant, "rows") or n_rows * cols < _LARGE or m.weight.dtype != torch.uint8
            or cols % qs.blocksize or cols % 2):
        return 1
    return blocks


class _NF4Linear(torch.autograd.Function):
    """x @ dequant(W).T (+ a frozen bias: Qwen2's q/k/v); the backward dequantises again (bitsandbytes keeps only
    the 4-bit weight, so do we).

    A large weight goes in row blocks when `blocks` > 1 (a plan short of memory): the forward writes each block's
    output columns, the backward sums grad[:, rows] @ W[rows]; only a block of the bf16 weight is alive at a time,
    and the step's peak is in a checkpointed layer's recompute and backward, where a whole one was 112 MiB.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, qs: Any, dequant: Dequant, blocks: int = 1,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        ctx.weight, ctx.qs, ctx.dequant, ctx.blocks = weight, qs, dequant, blocks  # frozen: not a saved activation
        b = None if bias is None else bias.to(x.dtype)  # bitsandbytes casts it to the compute dtype too
        if blocks <= 1:
            return F.linear(x, dequant(weight, qs, x.dtype), b)
        x2 = x.reshape(-1, x.shape[-1])
        out = torch.empty((x2.shape[0], qs.shape[0]), dtype=x.dtype, device=x.device)
        for r0, w in dequant.rows(weight, qs, x.dtype, blocks):  # type: ignore[attr-defined]
            if b is None:
                torch.mm(x2, w.t(), out=out[:, r0:r0 + w.shape[0]])
            else:
                torch.addmm(b[r0:r0 + w.shape[0]], x2, w.t(), out=out[:, r0:r0 + w.shape[0]])
        return out.view(*x.shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        if ctx.blocks <= 1:
            return torch.matmul(grad, ctx.dequant(ctx.weight, ctx.qs, grad.dtype)), None, None, None, None, None
        g = grad.reshape(-1, grad.shape[-1])
        dx: torch.Tensor | None = None
        for r0, w in ctx.dequant.rows(ctx.weight, ctx.qs, grad.dtype, ctx.blocks):
            part = g[:, r0:r0 + w.shape[0]]
            dx = torch.mm(part, w) if dx is None else dx.addmm_(part, w)
        assert dx is not None
        return dx.view(*grad.shape[:-1], dx.shape[-1]), None, None, None, None, None


def _is_nf4_linear(m: Any) -> bool:
    """A bitsandbytes 4-bit linear with its quant state, and no bias or a frozen one (the lean forwards give a
    bias no gradient)."""
    import bitsandbytes as bnb

    w, bias = getattr(m, "weight", None), getattr(m, "bias", None)
    return (isinstance(m, bnb.nn.Linear4bit) and (bias is None or not bias.requires_grad)
            and getattr(w, "quant_state", None) is not None and getattr(m, "compute_dtype", None) is not None)


def _nf4_forward(m: Any, dequant: Dequant, blocks: int = 1) -> Callable[[torch.Tensor], torch.Tensor]:
    blocks = row_blocks(m, dequant, blocks)

    def member(x: torch.Tensor) -> tuple[Member, tuple[torch.Tensor, ...]] | None:
        """This linear as a member of a shared-input step, where it computes what `forward` does: a whole weight
        under autocast to its compute dtype."""
        if blocks != 1 or not _autocast_on(x.device.type) or _autocast_dtype(x.device.type) != m.compute_dtype:
            return None
        return Member(m.weight, m.weight.quant_state, dequant, bias=m.bias), ()

    def forward(x: torch.Tensor) -> torch.Tensor:
        if (group := forward.envdoctor_group) is not None and (out := group.output(forward, x)) is not None:  # type: ignore[attr-defined]
            return out
        xc = x if x.dtype == m.compute_dtype else x.to(m.compute_dtype)
        out = _NF4Linear.apply(xc, m.weight, m.weight.quant_state, dequant, blocks, m.bias)
        return out if out.dtype == x.dtype else out.to(x.dtype)

    forward.envdoctor_lean = True  # type: ignore[attr-defined]
    forward.envdoctor_blocks = blocks  # type: ignore[attr-defined]
    forward.envdoctor_dequant = dequant  # type: ignore[attr-defined]
    forward.envdoctor_member = member  # type: ignore[attr-defined]
    forward.envdoctor_group = None  # type: ignore[attr-defined]
    return forward


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_enabled()


def _autocast_dtype(device_type: str) -> torch.dtype:
    try:
        return torch.get_autocast_dtype(device_type)
    except (AttributeError, TypeError):  # torch < 2.4
        return torch.get_autocast_gpu_dtype() if device_type == "cuda" else torch.get_autocast_cpu_dtype()


def _dropout_of(drop: Any) -> tuple[torch.Tensor | None, int, float] | None:
    """(seed, site, p) of a LoRA dropout the fused step can draw itself: an active HashDropout, or none at all
    (nn.Identity, p = 0, eval mode: p 0 and no seed); None for a dropout that needs the RNG state."""
    from .dropout import HashDropout

    if isinstance(drop, HashDropout):
        return (drop.seeds.base, drop.at, drop.p) if drop.training and drop.p > 0 else (None, 0, 0.0)
    if isinstance(drop, torch.nn.Identity) or (isinstance(drop, torch.nn.Dropout) and (drop.p == 0 or not drop.training)):
        return None, 0, 0.0
    return None


_NO_SEED: dict[torch.device, torch.Tensor] = {}


def _lora_forward(m: Any, original: Callable[..., Any], base: Callable[[torch.Tensor], torch.Tensor],
                  fused: bool = False) -> Callable[..., Any]:
    """The LoRA wrapper's forward: base(x) + s * B(A(dropout(x))). `fused`: where the base is a whole NF4 weight
    and autocast is on, one autograd step for both (lora_fused.py), else the base and the branch apart."""
    from .dropout import drop_linear

    layer = m.base_layer
    whole = getattr(base, "envdoctor_blocks", 1) == 1

    def plain_adapter() -> str | None:
        """The active adapter's name, if it is one plain LoRA adapter (else peft's own forward runs)."""
        active = m.active_adapters
        if (m.disable_adapters or m.merged or len(active) != 1 or active[0] not in m.lora_A
                or active[0] in getattr(m, "lora_variant", {}) or m.lora_A[active[0]].bias is not None
                or m.lora_B[active[0]].bias is not None):
            return None
        return str(active[0])

    def member(x: torch.Tensor) -> tuple[Member, tuple[torch.Tensor, ...]] | None:
        """This linear and its adapter as a member of a fused step (lora_fused.linears), where it can be one."""
        name = plain_adapter()
        if name is None or not (fused and whole and _autocast_on(x.device.type)):
            return None
        how = _dropout_of(m.lora_dropout[name])
        if how is None:
            return None
        seed, site, p = how
        if seed is None:
            seed = _NO_SEED.setdefault(x.device, torch.zeros((), dtype=torch.int64, device=x.device))
        return (Member(layer.weight, layer.weight.quant_state, base.envdoctor_dequant, True,  # type: ignore[attr-defined]
                       m.scaling[name], seed, site, p, layer.bias), (m.lora_A[name].weight, m.lora_B[name].weight))

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return original(x, *args, **kwargs)
        if (group := forward.envdoctor_group) is not None and (out := group.output(forward, x)) is not None:  # type: ignore[attr-defined]
            return out
        name = plain_adapter()
        if name is None:
            return original(x)
        if (one := member(x)) is not None:
            return linears(x, (one[0],), one[1], _autocast_dtype(x.device.type))[0]
        a, b = m.lora_A[name].weight, m.lora_B[name].weight
        drop = m.lora_dropout[name]
        result = base(x)
        if _autocast_on(x.device.type):
            z = drop_linear(x, a, drop, _autocast_dtype(x.device.type))
            return torch.add(result, F.linear(z, b), alpha=m.scaling[name])
        lora = F.linear(drop_linear(x, a, drop, None), b).to(result.dtype)
        return torch.add(result, lora, alpha=m.scaling[name])

    forward.envdoctor_lean = True  # type: ignore[attr-defined]
    forward.envdoctor_member = member  # type: ignore[attr-defined]
    forward.envdoctor_group = None  # type: ignore[attr-defined]
    return forward


# linears that read the same input, by their names in Llama-style decoder layers (Llama, Mistral, Qwen, Gemma)
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class _Siblings:
    """Linears of one layer that read the same input (q/k/v, gate/up): the first of them called computes all of
    them in one autograd step (lora_fused.linears: one input gradient, the products accumulated in place), the
    others take their output from here when they are called with the same tensor.

    Only an exact hit is taken (the same input object, grad mode and autocast dtype, an output not yet taken);
    anything else computes afresh, so a model that calls them otherwise gets what it asked for. An output
    computed and never taken only gets a zero gradient (autograd materialises it): correct, just wasted work.
    """

    def __init__(self, forwards: list[Any]) -> None:
        self.forwards = forwards
        self.key: tuple[Any, ...] | None = None
        self.pending: dict[int, torch.Tensor] = {}

    def output(self, me: Any, x: torch.Tensor) -> torch.Tensor | None:
        i = next(j for j, f in enumerate(self.forwards) if f is me)
        key = (x, torch.is_grad_enabled(), _autocast_on(x.device.type) and _autocast_dtype(x.device.type))
        if self.key is not None and self.key[0] is x and self.key[1:] == key[1:] and i in self.pending:
            out = self.pending.pop(i)
            if not self.pending:
                self.key = None  # nothing held past the last sibling's call
            return out
        specs = [f.envdoctor_member(x) for f in self.forwards]
        if any(s is None for s in specs) or not _autocast_on(x.device.type):
            return None
        members = tuple(s[0] for s in specs)  # type: ignore[index]
        adapters = tuple(t for s in specs for t in s[1])  # type: ignore[index]
        outs = linears(x, members, adapters, _autocast_dtype(x.device.type))
        self.key, self.pending = key, {j: o for j, o in enumerate(outs) if j != i}
        return outs[i]


def _group_siblings(model: Any) -> int:
    """Give each set of SIBLINGS whose members all run lean forwards one _Siblings; returns how many sets."""
    n = 0
    for parent in model.modules():
        for names in SIBLINGS:
            kids = [getattr(parent, name, None) for name in names]
            forwards = [k.__dict__.get("forward") for k in kids if isinstance(k, torch.nn.Module)]
            if len(forwards) == len(names) and all(getattr(f, "envdoctor_member", None) is not None
                                                   for f in forwards):
                group = _Siblings(forwards)
                for f in forwards:
                    f.envdoctor_group = group  # type: ignore[union-attr]
                n += 1
    return n


def _same_as_public(dequant: Dequant, modules: list[Any], blocks: int) -> bool:
    """The direct path must give bitsandbytes' own dequantised weight bit for bit, whole and in row blocks, on
    `modules` (one of each weight shape)."""
    try:
        with torch.no_grad():
            for m in modules:
                qs = m.weight.quant_state
                ref = _dequant_public(m.weight, qs, m.compute_dtype)
                if not torch.equal(dequant(m.weight, qs, m.compute_dtype), ref):
                    return False
                n = row_blocks(m, dequant, blocks)
                if n > 1:
                    parts = [w for _, w in dequant.rows(m.weight, qs, m.compute_dtype, n)]  # type: ignore[attr-defined]
                    if not torch.equal(torch.cat(parts), ref):
                        return False
        return True
    except Exception:
        return False


def resident(dequant: Dequant, modules: list[Any]) -> Dequant:
    """`dequant` done once: each module's weight dequantised now and kept (bit for bit what `dequant` gives in the
    step, since the base is frozen), for a plan with memory to spare (plan.resident_allowed); another dtype than
    the module's compute dtype, or another weight, is dequantised as before."""
    kept = {id(m.weight): (m.weight, dequant(m.weight, m.weight.quant_state, m.compute_dtype)) for m in modules}

    def once(weight: torch.Tensor, qs: Any, dtype: torch.dtype) -> torch.Tensor:
        hit = kept.get(id(weight))
        return hit[1] if hit is not None and hit[0] is weight and hit[1].dtype == dtype else dequant(weight, qs, dtype)

    return once


def apply_lean(model: Any, blocks: int = 1, fused: bool = True, keep: bool = False, shared: bool = True) -> Outcome:
    """Swap in the lean forwards on every NF4 linear (no bias, or a frozen one) and its LoRA wrapper; returns
    (applied, note).
    `blocks` > 1: large weights are dequantised in that many row blocks (less memory, a little more time);
    `fused`: a LoRA linear whose weight is whole is one autograd step with its adapter (lora_fused.py);
    `keep`: every weight dequantised once and kept in the compute dtype (`resident`; row blocks are then moot);
    `shared` (with `fused`): the linears of a layer that read one input (q/k/v, gate/up) in one step (_Siblings)."""
    try:
        import bitsandbytes  # noqa: F401
    except Exception as e:
        return Outcome(False, f"lean NF4 path off: bitsandbytes is not importable ({type(e).__name__})")
    nf4 = [m for m in model.modules() if _is_nf4_linear(m)]
    shapes = list({tuple(m.weight.quant_state.shape): m for m in nf4}.values())  # one module of each shape
    dequant: Dequant = _dequant_public
    how = "bitsandbytes' public dequant"
    for kernel, name in (("triton", "Triton NF4 kernel"), ("bnb", "bitsandbytes' CUDA kernel")):
        direct = _dequant_cuda_factory(kernel) if nf4 and nf4[0].weight.is_cuda else None
        if direct is not None and _same_as_public(direct, shapes, blocks):  # bit for bit, or the next one
            dequant, how = direct, f"direct dequant, {name}"
            break
    if keep and nf4:
        dequant, blocks = resident(dequant, nf4), 1
        kept = sum(m.weight.quant_state.shape.numel() * torch.finfo(m.compute_dtype).bits // 8 for m in nf4)
        how += f", kept dequantised ({kept / 2**30:.1f} GiB)"
    lora = plain = 0
    wrapped: set[int] = set()
    for m in model.modules():
        base_layer = getattr(m, "base_layer", None)
        if (base_layer is not None and hasattr(m, "lora_A") and _is_nf4_linear(base_layer)
                and not getattr(m.__dict__.get("forward"), "envdoctor_lean", False)):
            base = _nf4_forward(base_layer, dequant, blocks)
            m.forward = _lora_forward(m, m.forward, base, fused)
            base_layer.forward = base
            wrapped.add(id(base_layer))
            lora += 1
    for m in model.modules():
        if id(m) not in wrapped and _is_nf4_linear(m) and not getattr(m.__dict__.get("forward"), "envdoctor_lean", False):
            m.forward = _nf4_forward(m, dequant, blocks)
            plain += 1
    if not lora and not plain:
        return Outcome(False, "lean NF4 path off: no NF4 linear layers")
    if any(row_blocks(m, dequant, blocks) > 1 for m in shapes):
        how += f", large weights in {blocks} row blocks"
    if fused and lora:
        how += ", LoRA fused with its base"
    if fused and shared and (groups := _group_siblings(model)):
        how += f", {groups} shared-input groups"
    return Outcome(True, f"lean NF4 path on {lora} LoRA + {plain} plain NF4 linears ({how})")


def remove_lean(model: Any) -> int:
    """Back to the original bitsandbytes/peft forwards; returns how many modules were restored."""
    n = 0
    for m in model.modules():
        if getattr(m.__dict__.get("forward"), "envdoctor_lean", False):
            del m.forward
            n += 1
    return n
