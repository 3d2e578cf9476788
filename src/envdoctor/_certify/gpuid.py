"""The identity of this machine's NVIDIA GPUs (UUID, name, driver), read cheaply from /proc, else through NVML.

The guard needs it on every start of a training script. Reading /proc/driver/nvidia/gpus/*/information takes
well under a millisecond; importing pynvml and initialising NVML takes tens of milliseconds, so NVML is the
fallback for systems whose driver does not expose /proc (containers that hide it, WSL).
"""

from __future__ import annotations

import os

from ._record import Record

PROC_ROOT = "/proc/driver/nvidia"
WSL_LIB = "/usr/lib/wsl/lib"  # WSL exposes NVML here and has no /proc/driver/nvidia


class GpuIdentity(Record):
    """What must not change for a certificate to stay valid: the GPUs' UUIDs and the driver version."""

    __slots__ = _fields = ("uuids", "names", "driver_version", "source", "reason")
    _defaults = {"reason": ""}

    uuids: tuple[str, ...]
    names: tuple[str, ...]
    driver_version: str
    source: str  # "proc" | "nvml" | "none"
    reason: str

    @property
    def present(self) -> bool:
        return bool(self.uuids)


def _driver_from_proc(root: str) -> str:
    try:
        with open(os.path.join(root, "version"), encoding="utf-8") as f:
            text = f.read(4096)
    except OSError:
        return ""
    for word in text.split():  # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Tue ..."
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    return ""


def from_proc(root: str = PROC_ROOT) -> GpuIdentity | None:
    """GPU identity from the driver's /proc files, in PCI bus order (NVML's index order); None when absent."""
    gpus = os.path.join(root, "gpus")
    try:
        buses = sorted(os.listdir(gpus))
    except OSError:
        return None
    uuids: list[str] = []
    names: list[str] = []
    for bus in buses:
        try:
            with open(os.path.join(gpus, bus, "information"), encoding="utf-8") as f:
                info = f.read(8192)
        except OSError:
            continue
        fields = {}
        for line in info.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        if fields.get("gpu uuid"):
            uuids.append(fields["gpu uuid"])
            names.append(fields.get("model", ""))
    if not uuids:
        return None  # the folder exists but says nothing usable (some containers): let NVML answer
    return GpuIdentity(tuple(uuids), tuple(names), _driver_from_proc(root), "proc")


def from_nvml() -> GpuIdentity:
    """GPU identity through NVML (slow: imports pynvml); never raises."""
    try:
        import pynvml
    except ImportError:
        return GpuIdentity((), (), "", "none", "nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return GpuIdentity((), (), "", "none", f"NVML: {e}")
    try:
        count = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = tuple(_s(pynvml.nvmlDeviceGetUUID(h)) for h in handles)
        names = tuple(_s(pynvml.nvmlDeviceGetName(h)) for h in handles)
        return GpuIdentity(uuids, names, _s(pynvml.nvmlSystemGetDriverVersion()), "nvml",
                           "" if uuids else "NVML sees no GPU")
    except Exception as e:
        return GpuIdentity((), (), "", "none", f"NVML query failed: {e}")
    finally:
        try:  # contextlib.suppress would cost the guard an import
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def current(root: str = PROC_ROOT) -> GpuIdentity:
    """This machine's GPU identity: /proc when the driver exposes it, else NVML."""
    found = from_proc(root)
    if found is not None:
        return found
    import sys

    if sys.platform.startswith("linux") and not os.path.exists(root) and not os.path.exists(WSL_LIB):
        # Native Linux without the kernel module's /proc folder has no NVIDIA driver loaded, so NVML
        # could only fail, and importing it costs more than the whole guard is allowed.
        return GpuIdentity((), (), "", "proc", f"no NVIDIA driver loaded ({root} is absent)")
    return from_nvml()
