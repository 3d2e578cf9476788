"""Tier 2 on the GPU: CUDA is usable, torch has kernels for this GPU's architecture, and bf16 matmul works."""

from __future__ import annotations

from ..registry import Outcome, ProbeContext, register_probe


@register_probe("cuda-available", 2, gpu="required", timeout=180.0)
def cuda_available(ctx: ProbeContext) -> Outcome:
    """torch sees the GPU through CUDA (a CPU wheel or a driver too old for torch's CUDA fails here)."""
    import torch

    built = torch.version.cuda
    if built is None:
        return Outcome.failed(f"torch {torch.__version__} is a CPU build (torch.version.cuda is None)",
                              torch=torch.__version__)
    if not torch.cuda.is_available():
        return Outcome.failed(f"torch {torch.__version__} (CUDA {built}) cannot use the GPU: "
                              "torch.cuda.is_available() is False; the driver may be older than CUDA " + built,
                              torch=torch.__version__, cuda=built, driver=ctx.gpu.get("driver_version"))
    name = torch.cuda.get_device_name(0)
    return Outcome.passed(f"{torch.cuda.device_count()} GPU(s), {name}, torch {torch.__version__} CUDA {built}",
                          torch=torch.__version__, cuda=built, devices=torch.cuda.device_count(), name=name)


def _arch_ok(cap: tuple[int, int], archs: list[str]) -> tuple[bool, str]:
    """Whether torch's compiled architectures run on compute capability `cap` (SASS same major, or PTX JIT)."""
    major, minor = cap
    sass = [a for a in archs if a.startswith("sm_")]
    ptx = [a for a in archs if a.startswith("compute_")]

    def num(a: str) -> tuple[int, int]:
        digits = "".join(ch for ch in a.split("_", 1)[1] if ch.isdigit())
        return int(digits[:-1] or 0), int(digits[-1])

    if f"sm_{major}{minor}" in sass or any(a.startswith(f"sm_{major}{minor}") for a in sass):
        return True, f"sm_{major}{minor} is compiled in"
    same_major = [a for a in sass if num(a)[0] == major and num(a)[1] <= minor]
    if same_major:
        return True, f"{same_major[-1]} kernels run on sm_{major}{minor} (binary compatible)"
    jit = [a for a in ptx if num(a) <= cap]
    if jit:
        return True, f"only PTX ({jit[-1]}) for sm_{major}{minor}: kernels are JIT-compiled at first use (slow start)"
    return False, f"sm_{major}{minor} is not in torch's architecture list {' '.join(archs)}"


@register_probe("cuda-arch", 2, gpu="required", timeout=180.0)
def cuda_arch(ctx: ProbeContext) -> Outcome:
    """The GPU's compute capability is in torch's architecture list, and a kernel really launches on it."""
    import torch

    if not torch.cuda.is_available():
        return Outcome.failed("torch.cuda.is_available() is False")
    cap = torch.cuda.get_device_capability(0)
    archs = torch.cuda.get_arch_list()
    ok, why = _arch_ok(cap, archs)
    if not ok:
        return Outcome.failed(why + " (the symptom is 'no kernel image is available for execution on the device')",
                              capability=f"{cap[0]}.{cap[1]}", arch_list=archs)
    x = torch.arange(1024, device="cuda", dtype=torch.float32)
    total = float((x * 2 + 1).sum().item())  # an elementwise kernel and a reduction, compiled for this arch
    torch.cuda.synchronize()
    if total != 1024 * 1023 + 1024:
        return Outcome.failed(f"a simple kernel gave a wrong sum {total}", capability=f"{cap[0]}.{cap[1]}")
    return Outcome.passed(f"compute capability {cap[0]}.{cap[1]}: {why}", capability=f"{cap[0]}.{cap[1]}",
                          arch_list=archs)


@register_probe("bf16-matmul", 2, gpu="required", timeout=180.0)
def bf16_matmul(ctx: ProbeContext) -> Outcome:
    """A bf16 matmul on the GPU agrees with fp32 (where the matrix uses bf16; fp16 where it falls back)."""
    import torch

    rule = ctx.matrix.get("bf16")
    if not rule:
        return Outcome.skipped("the matrix has no bf16 rule")
    cap = torch.cuda.get_device_capability(0)
    cc = cap[0] + cap[1] / 10
    dtype, note = torch.bfloat16, ""
    if cc < float(rule.get("min_compute_capability", 8.0)):
        if rule.get("fallback") == "fp32":
            return Outcome.skipped(f"compute capability {cc} < {rule.get('min_compute_capability')}: the matrix trains in fp32")
        dtype, note = torch.float16, f" (bf16 needs compute capability >= {rule.get('min_compute_capability')}; fp16 fallback)"
    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(512, 512, device="cuda", generator=g)
    b = torch.randn(512, 512, device="cuda", generator=g)
    ref = a @ b
    got = (a.to(dtype) @ b.to(dtype)).float()
    torch.cuda.synchronize()
    if not torch.isfinite(got).all():
        return Outcome.failed(f"{dtype} matmul produced non-finite values{note}")
    rel = float((got - ref).norm() / ref.norm())
    if rel > 0.02:
        return Outcome.failed(f"{dtype} matmul is off by {rel:.3g} relative to fp32{note}", rel_error=rel)
    return Outcome.passed(f"{str(dtype).replace('torch.', '')} matmul 512x512, relative error {rel:.2e}{note}",
                          rel_error=rel, dtype=str(dtype))
