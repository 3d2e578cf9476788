"""The optimizers (paged AdamW for adapters, GaLoreAdamW8bit for full weights) and the learning-rate schedule."""

from __future__ import annotations

import functools
import math
import os
import struct
from typing import TYPE_CHECKING, Any, NamedTuple

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from .config import TrainConfig
from .plan import Plan

if TYPE_CHECKING:
    import torch
    from torch import Tensor


def optimizer(cfg: TrainConfig, plan: Plan, model: Any) -> Any:
    """Paged AdamW 32-bit (QLoRA on CUDA), AdamW (CPU), GaLoreAdamW8bit (GaLore on CUDA) or GaLoreAdamW (CPU)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.method == "qlora":
        if plan.device == "cuda":
            return paged_adamw(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    targets = tuple(cfg.galore_targets)
    galore: list[Any] = []
    regular: list[Any] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        module = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else name
        (galore if p.dim() == 2 and module in targets else regular).append(p)
    groups = [{"params": regular},
              {"params": galore, "rank": cfg.galore_rank, "update_proj_gap": cfg.galore_update_proj_gap,
               "scale": cfg.galore_scale, "proj_type": "std"}]
    if plan.device == "cuda":
        from galore_torch import GaLoreAdamW8bit

        return GaLoreAdamW8bit(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    from galore_torch import GaLoreAdamW  # the 8-bit optimizer needs CUDA

    return GaLoreAdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


_STEP_PARTS = ("check_overrides", "to_gpu", "init_state", "prefetch_state", "update_step")  # + `initialized`
# bitsandbytes releases whose 32-bit Adam step the multi-tensor step was read against (kOptimizer32bit2State's
# ADAM case and its corrections are the same text in 0.45.0-0.50.1); a later one takes its own kernels until read
_READ_RELEASES = ">=0.45,<0.51"


def paged_adamw(params: list[Any], **kw: Any) -> Any:
    """bitsandbytes' PagedAdamW32bit (its paged states, its state_dict) with a multi-tensor step.

    bitsandbytes 0.50's Optimizer8bit.step is a Python loop over the parameters: prefetch_state, then update_step
    -> F.optimizer_update_32bit -> a torch.library op -> a ctypes call of one small kernel, then
    torch.cuda.synchronize() (`sync_gpu(p)` in the loop). With LoRA r64 on q/k/v/o of a Llama-8B (256 tensors) the
    step took ~18 ms of wall time for ~3.5 ms of kernels, the GPU idle in between. Here all parameters of a group
    (and step count) take one torch._foreach_* chain of bitsandbytes' own arithmetic on bitsandbytes' own state
    buffers: a few dozen launches, and no device sync (bitsandbytes ends its step with one, for paged states: the
    host reads them only in state_dict, which syncs first), so the trainer can queue the next step's forward
    behind it while the GPU still works (loop._fit). The arithmetic is
    that of the backend bitsandbytes would run, which differ: on CUDA its kernel's (the weight decay after the
    update, C-float scalars), on the CPU its CPU backend's (the weight decay before, double scalars); see _adam.
    What stays per parameter on the host is bookkeeping and bitsandbytes' prefetch_state (cudaMemPrefetchAsync of
    each paged buffer before use, as its step does: under memory pressure the pages come back in bulk).

    The multi-tensor step covers what PagedAdamW32bit does by default: 32-bit states, no update-norm clipping
    (max_unorm 0), no percentile clipping, skip_zeros off, no group with amsgrad, plain fp32 contiguous
    parameters all on one CPU or CUDA device, no per-parameter override in bitsandbytes' GlobalOptimManager,
    and a bitsandbytes release in _READ_RELEASES. Anything else runs bitsandbytes' own per-parameter kernels
    (without the per-parameter syncs); the choice is made at the first step (again if a group is added), the
    override registry, process-wide and open to changes at any time, is looked at every step. Where this
    bitsandbytes lacks the step's parts, its own optimizer is returned.
    """
    import bitsandbytes as bnb

    base = bnb.optim.PagedAdamW32bit
    if not all(hasattr(base, a) for a in _STEP_PARTS):
        return base(params, **kw)
    opt = _paged_adamw_class()(params, **kw)
    return opt if hasattr(opt, "initialized") else base(params, **kw)


@functools.cache
def _paged_adamw_class() -> type:
    """The PagedAdamW32bit subclass, made once (bitsandbytes is imported only when a paged optimizer is asked for)."""
    import bitsandbytes as bnb
    import torch

    class PagedAdamW32bit(bnb.optim.PagedAdamW32bit):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            self.per_parameter: str | None = None  # why bitsandbytes' own kernels run, None: the multi-tensor step
            self._decided_for = -1  # the number of groups the choice was made for
            self._views = _StateViews()

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            if not getattr(self, "initialized", False):
                self.check_overrides()
                self.to_gpu()
                self.initialized = True
            if self._decided_for != len(self.param_groups):
                self.per_parameter = _why_per_parameter(self)
                self._decided_for = len(self.param_groups)
            if self.per_parameter is None and not _overridden(self.mng):
                self._multi_tensor_step()  # queued only: stream order puts anything after it behind it
            else:
                last = self._per_parameter_step()
                if last is not None and last.is_cuda:  # bitsandbytes' own step ends so
                    torch.cuda.synchronize(last.device)
            return loss

        def state_dict(self) -> Any:
            """bitsandbytes' state_dict, once the queued steps have written the paged states it reads on the host."""
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                torch.cuda.synchronize()
            return super().state_dict()

        def _per_parameter_step(self) -> Tensor | None:
            """bitsandbytes' own loop, without its per-parameter device syncs; the last parameter seen."""
            p = None
            for gindex, group in enumerate(self.param_groups):
                for pindex, p in enumerate(group["params"]):
                    if p.grad is None:
                        continue
                    if len(self.state[p]) == 0:
                        self.init_state(group, p, gindex, pindex)
                    self.prefetch_state(p)
                    self.update_step(group, p, gindex, pindex)
            return p

        def _multi_tensor_step(self) -> Tensor | None:
            """Each group's parameters with grads, by step count, through _adam; the last parameter seen.

            State and step count are bitsandbytes' (init_state, state["step"] += 1 as update_step does); a
            parameter whose state cannot be reached from its device takes update_step itself."""
            p = None
            for gindex, group in enumerate(self.param_groups):
                buckets: dict[int, _Bucket] = {}
                for pindex, p in enumerate(group["params"]):
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        self.init_state(group, p, gindex, pindex)
                    self.prefetch_state(p)
                    s1, s2 = self._views.of(state["state1"], p.device), self._views.of(state["state2"], p.device)
                    if s1 is None or s2 is None:
                        self.update_step(group, p, gindex, pindex)
                        continue
                    state["step"] += 1
                    buckets.setdefault(state["step"], _Bucket()).add(p, p.grad, s1, s2)
                for step, b in buckets.items():
                    kernel = b.params[0].device.type == "cuda"
                    _adam(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, _hyper(group, step, kernel), kernel)
            return p

    return PagedAdamW32bit


def _why_per_parameter(opt: Any) -> str | None:
    """What of this optimizer the multi-tensor step does not reproduce, or None: see paged_adamw."""
    import bitsandbytes as bnb
    import torch

    if os.environ.get("ENVDOCTOR_MULTI_TENSOR_ADAM", "1") == "0":  # for A/B measurements
        return "ENVDOCTOR_MULTI_TENSOR_ADAM=0"
    try:
        read = SpecifierSet(_READ_RELEASES).contains(Version(bnb.__version__), prereleases=True)
    except InvalidVersion:
        read = False
    if not read:
        return f"bitsandbytes {bnb.__version__}: its 32-bit Adam step is not the one read ({_READ_RELEASES})"
    if opt.optimizer_name != "adam":
        return f"optimizer {opt.optimizer_name!r}"
    args = opt.args
    if getattr(args, "optim_bits", 32) != 32:
        return "optim_bits != 32 (8-bit blockwise states)"
    if getattr(args, "max_unorm", 0.0) > 0.0:
        return "max_unorm > 0 (update-norm clipping)"
    if getattr(args, "percentile_clipping", 100) < 100:
        return "percentile_clipping < 100 (gradient-norm clipping)"
    if getattr(args, "skip_zeros", False):
        return "skip_zeros"
    if any(g.get("amsgrad", False) for g in opt.param_groups):
        return "a group with amsgrad"
    params = [p for g in opt.param_groups for p in g["params"]]
    if any(type(p.data) is not torch.Tensor for p in params):
        return "a parameter that is not a plain tensor (a DTensor, a tensor subclass)"
    if any(p.dtype != torch.float32 or not p.is_contiguous() for p in params):
        return "a parameter that is not contiguous fp32"
    devices = {p.device for p in params}
    if len(devices) > 1:
        return "parameters on several devices"
    if any(d.type not in ("cpu", "cuda") for d in devices):
        return "a device other than CPU and CUDA"
    return None


def _overridden(mng: Any) -> bool:
    """Whether bitsandbytes' GlobalOptimManager holds any per-parameter config: its keys are parameter ids and
    (group, index) pairs shared by every bitsandbytes optimizer of the process, so any entry may be ours."""
    return bool(getattr(mng, "pid2config", None) or getattr(mng, "index2config", None))


class _Bucket:
    """The parameters of one group and step count with their grads and (device) states, in step order."""

    def __init__(self) -> None:
        self.params: list[Tensor] = []
        self.grads: list[Tensor] = []
        self.exp_avgs: list[Tensor] = []
        self.exp_avg_sqs: list[Tensor] = []

    def add(self, p: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor) -> None:
        self.params.append(p)
        self.grads.append(grad)
        self.exp_avgs.append(exp_avg)
        self.exp_avg_sqs.append(exp_avg_sq)


class _CudaArray:
    """__cuda_array_interface__ of a paged buffer: lets torch.as_tensor build a CUDA tensor over its memory."""

    def __init__(self, t: Tensor) -> None:
        self.__cuda_array_interface__ = {"shape": tuple(t.shape), "typestr": "<f4", "data": (t.data_ptr(), False),
                                         "strides": None, "version": 2}


class _StateViews:
    """Each state buffer as a tensor on its parameter's device, the same memory.

    A paged buffer is a CPU tensor to torch: bitsandbytes builds it with torch.frombuffer over cudaMallocManaged
    memory (F.get_paged) and hands its pointer to its kernels, which run on the GPU. torch ops on it would run on
    the CPU, so the step works on a CUDA tensor over the same managed memory, made once per buffer (no copy: the
    update lands in bitsandbytes' buffer, which state_dict then reads). None where no such view exists (the
    pointer's device is not the parameter's, or a buffer on another device that is not paged)."""

    def __init__(self) -> None:
        self._views: dict[int, tuple[Tensor, Tensor | None]] = {}  # id(buffer) -> (buffer, kept alive; its view)

    def of(self, buf: Tensor, device: torch.device) -> Tensor | None:
        if buf.device == device:
            return buf
        hit = self._views.get(id(buf))
        if hit is None:
            hit = self._views[id(buf)] = (buf, _cuda_view(buf, device))
        return hit[1]


def _cuda_view(buf: Tensor, device: torch.device) -> Tensor | None:
    """A CUDA tensor over a paged fp32 buffer's memory, on `device`, or None (then torch would have copied it)."""
    import torch

    if device.type != "cuda" or not getattr(buf, "is_paged", False) or buf.dtype != torch.float32 \
            or not buf.is_contiguous():
        return None
    try:
        view = torch.as_tensor(_CudaArray(buf), device=device)
    except (AssertionError, RuntimeError, TypeError, ValueError):  # torch without CUDA or NumPy, a foreign pointer
        return None
    return view if view.device == device and view.data_ptr() == buf.data_ptr() else None


class _Hyper(NamedTuple):
    """One group's scalars for one step count, as the bitsandbytes backend computes them."""

    beta1: float
    one_minus_beta1: float
    beta2: float
    one_minus_beta2: float
    eps_correction2: float  # eps * correction2
    step_size: float  # -lr * correction2 / correction1
    decay: float | None  # 1 - lr * weight_decay; None without weight decay


def _f32(x: float) -> float:
    """x rounded to fp32 (a C float). An fp32 +, -, *, / or sqrt done in double on fp32 values and rounded is the
    fp32 operation's result (double's 53 bits exceed 2 x 24 + 2), so this replays the kernel's float arithmetic."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def _hyper(group: dict[str, Any], step: int, kernel: bool) -> _Hyper:
    """The scalars of bitsandbytes' 32-bit Adam step: kernel=True as its CUDA kernel computes them (C floats:
    ctypes.c_float arguments; kOptimizer32bit2State: correction1 = 1.0f - powf(beta1, step), correction2 =
    sqrtf(1.0f - powf(beta2, step)), step_size = -lr * correction2 / correction1, (1.0f - beta1), (1.0f - beta2),
    eps * correction2, 1.0f - (lr * weight_decay)), else as its CPU backend does (backends/cpu/ops.py,
    _optimizer_update_32bit_cpu: the same expressions in Python doubles). powf is not correctly rounded, so the
    kernel's corrections may differ from these in the last bit or two."""
    f = _f32 if kernel else float
    lr, eps, wd = f(group["lr"]), f(group["eps"]), f(group["weight_decay"])
    beta1, beta2 = f(group["betas"][0]), f(group["betas"][1])
    correction1 = f(1.0 - f(beta1 ** step))
    correction2 = f(math.sqrt(f(1.0 - f(beta2 ** step))))
    return _Hyper(beta1, f(1.0 - beta1), beta2, f(1.0 - beta2), f(eps * correction2),
                  f(f(-lr * correction2) / correction1), f(1.0 - f(lr * wd)) if wd > 0.0 else None)


def _adam(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
          h: _Hyper, kernel: bool) -> None:
    """bitsandbytes' 32-bit Adam update of all `params` at once, in place, in its order:

        s1 = s1 * beta1 + (1 - beta1) * g
        s2 = s2 * beta2 + (1 - beta2) * (g * g)
        p = p + step_size * (s1 / (sqrt(s2) + eps * correction2))
        p = p * (1 - lr * weight_decay)          (weight_decay > 0)

    kernel=True: the CUDA kernel's order (kernels.cu, kOptimizer32bit2State<float, ADAM>: the weight decay after
    the update; foreach addcdiv on CUDA is p + value * (s1 / denom), the kernel's grouping). kernel=False: the CPU
    backend's (backends/cpu/ops.py: p_float.mul_(1 - lr * weight_decay) before the update, which it adds as
    p.add_(s1 / denom, alpha=step_size)), with its very ops, so on the CPU the two agree to the bit. One transient
    the size of the parameters: sqrt(s2) + eps * correction2 (and the quotient on the CPU)."""
    import torch

    torch._foreach_mul_(exp_avgs, h.beta1)
    torch._foreach_add_(exp_avgs, grads, alpha=h.one_minus_beta1)
    torch._foreach_mul_(exp_avg_sqs, h.beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=h.one_minus_beta2)
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_add_(denom, h.eps_correction2)
    if kernel:
        torch._foreach_addcdiv_(params, exp_avgs, denom, value=h.step_size)
        if h.decay is not None:
            torch._foreach_mul_(params, h.decay)
    else:
        if h.decay is not None:
            torch._foreach_mul_(params, h.decay)
        torch._foreach_add_(params, torch._foreach_div(exp_avgs, denom), alpha=h.step_size)


def scheduler(opt: Any, warmup: int, total: int) -> Any:
    """Linear warmup over `warmup` steps (none when 0), then linear decay to 0 at `total`."""
    import torch

    def factor(s: int) -> float:
        decay = max(0.0, 1 - s / max(total, 1))
        return min(1.0, (s + 1) / (warmup + 1)) * decay if warmup else decay

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


