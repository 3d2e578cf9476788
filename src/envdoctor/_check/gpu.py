"""The GPU rules of a matrix applied to the detected (or declared) GPU and torch's CUDA build."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .._env.environment import Environment
from .._env.gpu import GpuInfo
from .._matrix.model import Matrix
from .findings import Finding, Kind, Status


def gpu_findings(matrix: Matrix, env: Environment) -> Iterator[Finding]:
    """CUDA needed, MPS unsupported, bf16 by compute capability, VRAM per workload, driver vs torch build."""
    gpu, rules = env.gpu, matrix.gpu
    desc = f"{gpu.name} ({gpu.source})" if gpu.available else f"no GPU ({gpu.reason})"
    if rules.cuda is not None and rules.cuda.required:
        needs = ", ".join(rules.cuda.packages) or "this stack"
        if gpu.available and gpu.kind == "cuda":
            yield Finding(Kind.GPU, Status.OK, "cuda", f"CUDA GPU: {gpu.name}", reason=rules.cuda.reason,
                          evidence=rules.cuda.evidence, expected="CUDA", found=gpu.name)
        elif gpu.kind == "mps" and rules.mps is not None and not rules.mps.supported:
            yield Finding(Kind.GPU, Status.FAIL, "mps", f"{needs} needs CUDA; Apple MPS is not supported",
                          reason=rules.mps.reason, evidence=rules.mps.evidence, expected="CUDA", found="MPS",
                          fix="run on a CUDA machine (Colab T4/A100, a rented GPU)")
        else:
            yield Finding(Kind.GPU, Status.FAIL, "cuda", f"{needs} needs a CUDA GPU; found {desc}",
                          reason=rules.cuda.reason, evidence=rules.cuda.evidence, expected="CUDA",
                          found=gpu.kind if gpu.available else "none",
                          fix="run on a CUDA machine, or check a declared GPU with --gpu t4|a100-40gb|h100-80gb")
    if not (gpu.available and gpu.kind == "cuda"):
        return
    if rules.bf16 is not None and gpu.cc is not None:
        rule = rules.bf16
        ok = gpu.cc >= rule.min_compute_capability
        yield Finding(Kind.GPU, Status.OK if ok else Status.WARN, "bf16",
                      f"bf16 compute {'supported' if ok else 'unsupported'} on {gpu.name} (compute capability "
                      f"{gpu.cc:.1f}{'' if ok else f' < {rule.min_compute_capability:.1f}: use {rule.fallback}'})",
                      reason=rule.reason, evidence=rule.evidence, expected=f">= {rule.min_compute_capability}",
                      found=f"{gpu.cc:.1f}")
    for w in rules.workloads:
        ok = gpu.memory_gib >= w.min_vram_gib
        yield Finding(Kind.GPU, Status.OK if ok else Status.WARN, f"vram:{w.name}",
                      f"{w.name} needs {w.min_vram_gib:g} GiB; {gpu.name} has {gpu.memory_gib:.0f} GiB",
                      reason=w.reason, evidence=w.evidence, expected=f">= {w.min_vram_gib:g} GiB",
                      found=f"{gpu.memory_gib:.1f} GiB")
    if rules.driver is not None and rules.driver.check and env.get("torch") is not None:
        yield from _driver(rules.driver, env, gpu)


def _driver(rule: Any, env: Environment, gpu: GpuInfo) -> Iterator[Finding]:
    torch_cuda = env.torch_cuda
    common: dict[str, Any] = dict(reason=rule.reason, evidence=rule.evidence)
    if torch_cuda is None:
        yield Finding(Kind.GPU, Status.FAIL, "torch-cuda", f"torch {env.get('torch').raw_version} is not a CUDA build",  # type: ignore[union-attr]
                      expected="a CUDA build of torch", found="CPU build",
                      fix="envdoctor fix (installs the matrix's torch build)", **common)
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
