"""The checkers of the GPU rules (gpu.*) against the detected (or declared) GPU and torch's CUDA build."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .._env.environment import Environment
from .._env.gpu import GpuInfo
from .._matrix.model import DriverRule, GpuRules
from .findings import Finding, Kind, Status
from .registry import Context, checks


def _cuda_here(gpu: GpuInfo) -> bool:
    return gpu.available and gpu.kind == "cuda"


def _mps_refused(rules: GpuRules, gpu: GpuInfo) -> bool:
    """A stack that needs CUDA, on an MPS machine, with a rule that says MPS cannot stand in."""
    return gpu.kind == "mps" and rules.mps is not None and not rules.mps.supported


@checks("gpu.cuda")
def cuda(ctx: Context) -> Iterator[Finding]:
    """A required CUDA GPU: present, or not (an MPS machine is the gpu.mps checker's to explain)."""
    gpu, rules = ctx.env.gpu, ctx.matrix.gpu
    rule = rules.cuda
    if rule is None or not rule.required:
        return
    if _cuda_here(gpu):
        yield Finding(Kind.GPU, Status.OK, "cuda", f"CUDA GPU: {gpu.name}", reason=rule.reason,
                      evidence=rule.evidence, expected="CUDA", found=gpu.name)
    elif not _mps_refused(rules, gpu):
        needs = ", ".join(rule.packages) or "this stack"
        desc = f"{gpu.name} ({gpu.source})" if gpu.available else f"no GPU ({gpu.reason})"
        yield Finding(Kind.GPU, Status.FAIL, "cuda", f"{needs} needs a CUDA GPU; found {desc}",
                      reason=rule.reason, evidence=rule.evidence, expected="CUDA",
                      found=gpu.kind if gpu.available else "none",
                      fix="run on a CUDA machine, or check a declared GPU with --gpu t4|a100-40gb|h100-80gb")


@checks("gpu.mps")
def mps(ctx: Context) -> Iterator[Finding]:
    """Apple MPS where the stack needs CUDA and its rule says MPS cannot stand in."""
    gpu, rules = ctx.env.gpu, ctx.matrix.gpu
    if rules.cuda is None or not rules.cuda.required or rules.mps is None or not _mps_refused(rules, gpu):
        return
    needs = ", ".join(rules.cuda.packages) or "this stack"
    yield Finding(Kind.GPU, Status.FAIL, "mps", f"{needs} needs CUDA; Apple MPS is not supported",
                  reason=rules.mps.reason, evidence=rules.mps.evidence, expected="CUDA", found="MPS",
                  fix="run on a CUDA machine (Colab T4/A100, a rented GPU)")


@checks("gpu.bf16")
def bf16(ctx: Context) -> Iterator[Finding]:
    """bf16 compute by the CUDA GPU's compute capability."""
    gpu, rule = ctx.env.gpu, ctx.matrix.gpu.bf16
    if rule is None or not _cuda_here(gpu) or gpu.cc is None:
        return
    ok = gpu.cc >= rule.min_compute_capability
    yield Finding(Kind.GPU, Status.OK if ok else Status.WARN, "bf16",
                  f"bf16 compute {'supported' if ok else 'unsupported'} on {gpu.name} (compute capability "
                  f"{gpu.cc:.1f}{'' if ok else f' < {rule.min_compute_capability:.1f}: use {rule.fallback}'})",
                  reason=rule.reason, evidence=rule.evidence, expected=f">= {rule.min_compute_capability}",
                  found=f"{gpu.cc:.1f}")


@checks("gpu.workloads")
def workloads(ctx: Context) -> Iterator[Finding]:
    """Each workload's memory against the CUDA GPU's."""
    gpu = ctx.env.gpu
    if not _cuda_here(gpu):
        return
    for w in ctx.matrix.gpu.workloads:
        ok = gpu.memory_gib >= w.min_vram_gib
        yield Finding(Kind.GPU, Status.OK if ok else Status.WARN, f"vram:{w.name}",
                      f"{w.name} needs {w.min_vram_gib:g} GiB; {gpu.name} has {gpu.memory_gib:.0f} GiB",
                      reason=w.reason, evidence=w.evidence, expected=f">= {w.min_vram_gib:g} GiB",
                      found=f"{gpu.memory_gib:.1f} GiB")


@checks("gpu.driver")
def driver(ctx: Context) -> Iterator[Finding]:
    """The driver's CUDA version against torch's CUDA build."""
    env, rule = ctx.env, ctx.matrix.gpu.driver
    if rule is not None and rule.check and _cuda_here(env.gpu) and env.get("torch") is not None:
        yield from _driver(rule, env, env.gpu, _cuda_build_fix(ctx))


def _cuda_build_fix(ctx: Context) -> str:
    """What installs a CUDA torch in place of a CPU one: `envdoctor fix` when the matrix names a CUDA build of
    torch (a cuNNN local label or a pytorch:cuNNN index); else why fix cannot (it keeps any build the rule admits)."""
    rule = next((p for p in ctx.matrix.packages if p.key == "torch"), None)
    if rule is not None and any(re.search(r"\bcu\d+", x or "") for x in (rule.local, rule.index_url)):
        fix = ctx.fix
        return f"{fix} (installs the matrix's torch build)" if fix.startswith("envdoctor fix") else fix
    return (f"{ctx.matrix.ref} names no CUDA build of torch (no local or index_url on its torch rule), so envdoctor "
            f"fix keeps this one; install a CUDA build for a CUDA version the driver supports yourself "
            f"(pip install --force-reinstall torch --index-url <the PyTorch index for that CUDA>, see "
            f"https://pytorch.org/get-started/locally/), or use a matrix that pins one")


def _driver(rule: DriverRule, env: Environment, gpu: GpuInfo, cuda_fix: str) -> Iterator[Finding]:
    torch_cuda = env.torch_cuda
    common: dict[str, Any] = dict(reason=rule.reason, evidence=rule.evidence)
    if torch_cuda is None:
        yield Finding(Kind.GPU, Status.FAIL, "torch-cuda", f"torch {env.get('torch').raw_version} is not a CUDA build",  # type: ignore[union-attr]
                      expected="a CUDA build of torch", found="CPU build",
                      fix=cuda_fix, **common)
        return
    if not gpu.cuda_driver_version:
        yield Finding(Kind.GPU, Status.SKIP, "torch-cuda", f"torch is built for CUDA {torch_cuda}; the driver's CUDA "
                      "version is unknown", expected=f">= {torch_cuda}", **common)
        return
    t = tuple(int(x) for x in torch_cuda.split(".")[:2])
    d = tuple(int(x) for x in gpu.cuda_driver_version.split(".")[:2])
    if t <= d:
        status, verb = Status.OK, "supports"
    elif t[0] == d[0]:
        status, verb = Status.WARN, "is older than (minor-version compatibility may still work for)"
    else:
        status, verb = Status.FAIL, "is too old for"
    yield Finding(Kind.GPU, status, "torch-cuda",
                  f"driver {gpu.driver_version} (CUDA {gpu.cuda_driver_version}) {verb} torch's CUDA {torch_cuda} build",
                  expected=f">= {torch_cuda}", found=gpu.cuda_driver_version,
                  fix=None if status is Status.OK else "update the NVIDIA driver, or install a torch build for an older CUDA",
                  **common)
