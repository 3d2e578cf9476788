"""The GPU rules of a matrix (`[gpu.cuda]`, `[gpu.bf16]`, `[gpu.mps]`, `[gpu.driver]`, `[[gpu.workloads]]`), one group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .record import Record, doc, evidence, reason, section

Precision = Literal["fp16", "fp32"]


def _settings(rule: Any) -> str:
    """A one-table rule's settings, e.g. 'required=True, packages=('bitsandbytes',)'."""
    return ", ".join(f"{k}={v}" for k, v in vars(rule).items() if k not in ("reason", "evidence"))


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class _GpuRule(Record):
    """A GPU rule: why it exists and where that is written down (its settings follow in each kind)."""

    reason: str = reason()
    evidence: tuple[str, ...] = evidence()



@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class CudaRule(_GpuRule):
    """The stack needs a CUDA GPU."""

    required: bool = doc("Whether a CUDA GPU is required.", True)
    packages: tuple[str, ...] = doc("The packages that need CUDA.", ())


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Bf16Rule(_GpuRule):
    """bf16 compute needs a minimum compute capability; below it the stack falls back."""

    min_compute_capability: float = doc("The lowest compute capability with bf16 compute, e.g. 8.0 (Ampere).", 8.0)
    fallback: Precision = doc("The precision to use below it.", "fp16")


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class MpsRule(_GpuRule):
    """Whether Apple's MPS backend can stand in for CUDA."""

    supported: bool = doc("Whether the stack runs on MPS.", False)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class WorkloadRule(_GpuRule):
    """A workload and the GPU memory it needs."""

    name: str = doc("The workload, e.g. 'qlora-8b'.")
    min_vram_gib: float = doc("GPU memory it needs, in GiB.", gt=0)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class DriverRule(_GpuRule):
    """The NVIDIA driver must support the CUDA version torch was built for."""

    check: bool = doc("torch's CUDA build must not be newer than the driver's CUDA.", True)


@dataclass(frozen=True, eq=False, repr=False)
class GpuRules(Record):
    """The GPU rules: CUDA, bf16, MPS, the driver, and memory per workload."""

    cuda: CudaRule | None = section("The stack needs a CUDA GPU.", label=lambda r: "cuda", show=_settings,
                                    title="gpu.cuda", one=True)
    bf16: Bf16Rule | None = section("bf16 needs a compute capability.", label=lambda r: "bf16", show=_settings,
                                    title="gpu.bf16", one=True)
    mps: MpsRule | None = section("Apple MPS support.", label=lambda r: "mps", show=_settings, title="gpu.mps", one=True)
    driver: DriverRule | None = section("The driver against torch's CUDA build.", label=lambda r: "driver",
                                        show=_settings, title="gpu.driver", one=True)
    workloads: tuple[WorkloadRule, ...] = section(
        "GPU memory per workload.", key=("name",), label=lambda w: w.name, show=lambda w: f">= {w.min_vram_gib:g} GiB",
        head=lambda w: f"{w.name}: >= {w.min_vram_gib:g} GiB", title="gpu workloads")
