"""The identity of this machine's NVIDIA GPUs (UUIDs, names, driver) that a certificate is bound to.

The guard needs it on every start of a training script: it comes from the driver's /proc files through
`_fastpath` (well under a millisecond), else from NVML through `_env.gpu` (tens of milliseconds), the
fallback for systems whose driver does not expose /proc (containers that hide it, WSL).
"""

from __future__ import annotations

from .. import _fastpath
from ._record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: this runs in the guard
if TYPE_CHECKING:  # pragma: no cover
    from typing import Literal

    IdentitySource = Literal["proc", "nvml", "nvidia-smi", "declared", "fake", "none"]  # where the UUIDs came from


class GpuIdentity(Record):
    """What must not change for a certificate to stay valid: the GPUs' UUIDs and the driver version."""

    __slots__ = _fields = ("uuids", "names", "driver_version", "source", "reason")
    _defaults = {"reason": ""}

    uuids: tuple[str, ...]
    names: tuple[str, ...]
    driver_version: str
    source: IdentitySource
    reason: str

    @property
    def present(self) -> bool:
        """Whether at least one GPU with a UUID is visible."""
        return bool(self.uuids)


def from_proc(root: str = _fastpath.PROC_ROOT) -> GpuIdentity | None:
    """GPU identity from the driver's /proc files, in PCI bus order (NVML's index order); None when absent."""
    gpus = _fastpath.proc_gpus(root)
    if not gpus:
        return None  # no folder, or one that says nothing usable (some containers): let NVML answer
    return GpuIdentity(tuple(u for u, _ in gpus), tuple(m for _, m in gpus), _fastpath.proc_driver_version(root) or "",
                       "proc")


def from_nvml() -> GpuIdentity:
    """GPU identity through NVML (slow: imports pynvml); never raises."""
    from .._env.gpu import nvml_devices

    devices, reason = nvml_devices()
    if not devices:
        return GpuIdentity((), (), "", "none", reason)
    return GpuIdentity(tuple(d.uuid for d in devices), tuple(d.name for d in devices), devices[0].driver_version,
                       "nvml")


def current(root: str = _fastpath.PROC_ROOT) -> GpuIdentity:
    """This machine's GPU identity: /proc when the driver exposes it, else NVML."""
    found = from_proc(root)
    if found is not None:
        return found
    # Native Linux without any sign of the kernel module has no NVIDIA driver loaded, so NVML could only
    # fail, and importing it costs more than the whole guard is allowed.
    absent = _fastpath.no_driver_reason((root, *_fastpath.DRIVER_SIGNS[1:]))
    if absent:
        return GpuIdentity((), (), "", "proc", absent)
    return from_nvml()
