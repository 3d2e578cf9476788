"""GPU facts through NVML, with fallbacks (nvidia-smi, /proc), and declared GPU targets for --gpu."""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Literal

from .. import _fastpath
from ..errors import UsageError

Runner = Callable[[Sequence[str], float], str]
GpuKind = Literal["cuda", "mps", "none"]
# where the facts came from; "fake" is envdoctor.testing's GPU that is not on this machine
GpuSource = Literal["nvml", "nvidia-smi", "proc", "declared", "platform", "fake", "none"]


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as seen (or declared). `available=False` carries the reason instead of None."""

    available: bool
    kind: GpuKind = "none"
    name: str = ""
    memory_total_bytes: int = 0
    compute_capability: tuple[int, int] | None = None
    driver_version: str = ""
    cuda_driver_version: str = ""  # the newest CUDA the driver supports, e.g. "13.0"
    uuid: str = ""
    count: int = 0
    source: GpuSource = "none"
    reason: str = ""

    @property
    def memory_gib(self) -> float:
        return self.memory_total_bytes / 2**30

    @property
    def cc(self) -> float | None:
        """Compute capability as a number, e.g. 8.0 for an A100."""
        if self.compute_capability is None:
            return None
        major, minor = self.compute_capability
        return major + minor / 10

    def to_dict(self) -> dict[str, object]:
        return {
            "available": self.available, "kind": self.kind, "name": self.name,
            "memory_gib": round(self.memory_gib, 2),
            "compute_capability": f"{self.compute_capability[0]}.{self.compute_capability[1]}"
            if self.compute_capability else None,
            "driver_version": self.driver_version, "cuda_driver_version": self.cuda_driver_version,
            "uuid": self.uuid, "count": self.count, "source": self.source, "reason": self.reason,
        }


NO_GPU = GpuInfo(available=False, reason="no GPU declared")
TARGETS_FILE = Path(__file__).resolve().parent.parent / "data" / "gpu_targets.json"


@cache
def gpu_targets() -> dict[str, GpuInfo]:
    """The GPUs `--gpu` can name, from data/gpu_targets.json: memory as marketed, compute capability."""
    import json

    out: dict[str, GpuInfo] = {}
    for key, t in json.loads(TARGETS_FILE.read_text(encoding="utf-8"))["targets"].items():
        cc = t and t["compute_capability"]
        out[key] = NO_GPU if t is None else GpuInfo(True, t["kind"], t["name"], int(t["memory_gib"] * 2**30),
                                                     tuple(cc) if cc else None)  # type: ignore[arg-type]
    return out


def declared(target: str) -> GpuInfo:
    """The GPU named by `--gpu TARGET`; raises UsageError listing the known targets."""
    key = target.strip().lower()
    targets = gpu_targets()
    if key not in targets:
        import difflib

        hint = difflib.get_close_matches(key, list(targets), n=1, cutoff=0.5)
        did = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise UsageError(f"unknown GPU target {target!r}{did}; known: {', '.join(targets)}")
    info = targets[key]
    return replace(info, source="declared", count=1 if info.available else 0,
                   reason=info.reason or f"declared with --gpu {key}")


def _run(cmd: Sequence[str], timeout: float) -> str:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=True).stdout


def _cuda_from_int(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def nvml_devices() -> tuple[list[GpuInfo], str]:
    """Every GPU NVML sees, in its index order, and why none when the list is empty; never raises.

    The one NVML query: `detect` reports the first GPU, the certificate's GPU identity takes every UUID.
    """
    try:
        import pynvml  # nvidia-ml-py: imported only here, because most callers never need it
    except ImportError:
        return [], "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return [], f"NVML: {e}"
    try:
        count = pynvml.nvmlDeviceGetCount()
        driver = _s(pynvml.nvmlSystemGetDriverVersion())
        cuda = _cuda_from_int(pynvml.nvmlSystemGetCudaDriverVersion())
        out = []
        for i in range(count):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            out.append(GpuInfo(True, "cuda", _s(pynvml.nvmlDeviceGetName(h)), int(pynvml.nvmlDeviceGetMemoryInfo(h).total),
                               (int(major), int(minor)), driver, cuda, _s(pynvml.nvmlDeviceGetUUID(h)), count, "nvml"))
        return out, "" if out else "NVML sees no GPU"
    except Exception as e:
        return [], f"NVML query failed: {e}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _from_nvml() -> GpuInfo:
    devices, reason = nvml_devices()
    if devices:
        return devices[0]
    return GpuInfo(False, reason=reason)


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _memory_bytes(text: str) -> int:
    """nvidia-smi's memory.total in MiB; 0 when it prints [N/A] (unified-memory GPUs) or nothing."""
    try:
        return int(float(text)) * 2**20
    except ValueError:
        return 0


def _from_smi(run: Runner) -> GpuInfo:
    try:
        out = run(["nvidia-smi", "--query-gpu=name,memory.total,compute_cap,driver_version,uuid",
                   "--format=csv,noheader,nounits"], 5.0)
    except FileNotFoundError:
        return GpuInfo(False, reason="nvidia-smi not found")
    except subprocess.TimeoutExpired:
        return GpuInfo(False, reason="nvidia-smi timed out after 5 s")
    except (subprocess.CalledProcessError, OSError) as e:
        return GpuInfo(False, reason=f"nvidia-smi failed: {e}")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        return GpuInfo(False, source="nvidia-smi", reason="nvidia-smi lists no GPU")
    cols = [x.strip() for x in lines[0].split(",")]
    # an older nvidia-smi (or a driver that hides a field) prints fewer columns or [N/A]: keep what is known
    name, mem, cc, driver, uuid = (c if c and not c.startswith("[") else "" for c in (cols + [""] * 5)[:5])
    major, _, minor = cc.partition(".")
    cuda = ""
    try:
        head = run(["nvidia-smi"], 5.0)
        marker = "CUDA Version:"
        if marker in head:
            cuda = head.split(marker, 1)[1].split()[0]
    except Exception:
        pass
    return GpuInfo(True, "cuda", name, _memory_bytes(mem),
                   (int(major), int(minor)) if major.isdigit() and (minor or "0").isdigit() else None,
                   driver, cuda, uuid, len(lines), "nvidia-smi")


def _from_proc() -> GpuInfo:
    driver = _fastpath.proc_driver_version()
    if driver is None:
        return GpuInfo(False, reason="no NVIDIA driver (NVML, nvidia-smi and /proc/driver/nvidia all absent)")
    return GpuInfo(False, "cuda", driver_version=driver, source="proc",
                   reason="an NVIDIA driver is loaded but neither NVML nor nvidia-smi could read the GPU")


def detect(run: Runner = _run) -> GpuInfo:
    """The first GPU of this machine: NVML, else nvidia-smi, else /proc; Apple silicon reports MPS."""
    if sys.platform == "darwin":
        if platform.machine() == "arm64":
            return GpuInfo(True, "mps", "Apple MPS", 0, None, source="platform", count=1)
        return GpuInfo(False, reason="macOS without Apple silicon: no CUDA and no MPS")
    absent = _fastpath.no_driver_reason()
    if absent:
        return GpuInfo(False, reason=absent)
    info = _from_nvml()
    if info.available:
        return info
    smi = _from_smi(run)
    if smi.available:
        return smi
    proc = _from_proc()
    if proc.source == "proc":
        return proc
    return GpuInfo(False, reason=f"{info.reason}; {smi.reason}")
