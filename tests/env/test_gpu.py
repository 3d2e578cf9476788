"""GPU facts: nvidia-smi through the `run=` seam (fake outputs, no GPU needed), declared targets, the no-driver shortcut."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from envdoctor._env import gpu as _gpu
from envdoctor.errors import UsageError

HEAD = "| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: 13.0 |\n"


def _fake_smi(query_out: str, head: str = HEAD):  # type: ignore[no-untyped-def]
    def run(cmd: Sequence[str], timeout: float) -> str:
        return query_out if len(cmd) > 1 else head

    return run


@pytest.fixture
def fake_driver_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Linux machine whose driver is loaded but NVML cannot be used, so detect() falls back to nvidia-smi."""
    monkeypatch.setattr(_gpu.sys, "platform", "linux")
    monkeypatch.setattr(_gpu._fastpath, "no_driver_reason", lambda *a: "")
    monkeypatch.setattr(_gpu, "nvml_devices", lambda: ([], "nvidia-ml-py is not installed"))


def test_fake_smi_full_line(fake_driver_without_nvml: None) -> None:
    info = _gpu.detect(run=_fake_smi("NVIDIA H200, 143771, 9.0, 580.159.04, GPU-4c5de732-fake\n"))
    assert (info.available, info.kind, info.source, info.name) == (True, "cuda", "nvidia-smi", "NVIDIA H200")
    assert info.memory_total_bytes == 143771 * 2**20 and info.compute_capability == (9, 0)
    assert (info.driver_version, info.cuda_driver_version, info.uuid, info.count) == ("580.159.04", "13.0",
                                                                                      "GPU-4c5de732-fake", 1)


@pytest.mark.parametrize(("line", "memory", "cc", "uuid"), [
    pytest.param("NVIDIA GB10, [N/A], 12.1, 580.95.05, GPU-a-fake", 0, (12, 1), "GPU-a-fake", id="memory-NA"),
    pytest.param("NVIDIA GB10, [Not Supported], [N/A], 580.95.05, [N/A]", 0, None, "", id="several-NA"),
    pytest.param("Tesla T4, 15360, 7.5", 15360 * 2**20, (7, 5), "", id="fewer-columns"),
    pytest.param("Tesla T4", 0, None, "", id="name-only"),
])
def test_fake_smi_odd_output_gives_what_is_known(fake_driver_without_nvml: None, line: str, memory: int,
                                                 cc: tuple[int, int] | None, uuid: str) -> None:
    info = _gpu.detect(run=_fake_smi(line + "\n", head="no version line"))
    assert info.available and info.source == "nvidia-smi" and info.name == line.split(",")[0]
    assert (info.memory_total_bytes, info.compute_capability, info.uuid) == (memory, cc, uuid)
    assert info.cuda_driver_version == ""


def test_fake_smi_counts_every_gpu(fake_driver_without_nvml: None) -> None:
    info = _gpu.detect(run=_fake_smi("NVIDIA H200, 1, 9.0, 580, GPU-a\nNVIDIA H200, 1, 9.0, 580, GPU-b\n"))
    assert info.count == 2 and info.uuid == "GPU-a"


@pytest.mark.parametrize(("error", "reason"), [
    (FileNotFoundError(), "nvidia-smi not found"),
    (subprocess.TimeoutExpired("nvidia-smi", 5), "nvidia-smi timed out"),
    (subprocess.CalledProcessError(9, "nvidia-smi"), "nvidia-smi failed"),
])
def test_fake_smi_failures_are_reasons(fake_driver_without_nvml: None, monkeypatch: pytest.MonkeyPatch,
                                       error: Exception, reason: str) -> None:
    def run(cmd: Sequence[str], timeout: float) -> str:
        raise error

    monkeypatch.setattr(_gpu._fastpath, "proc_driver_version", lambda *a: None)
    info = _gpu.detect(run=run)
    assert not info.available and reason in info.reason and "nvidia-ml-py is not installed" in info.reason


def test_fake_smi_empty_list_then_proc_driver(fake_driver_without_nvml: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gpu._fastpath, "proc_driver_version", lambda *a: "580.159.04")
    info = _gpu.detect(run=_fake_smi(""))
    assert not info.available and info.source == "proc" and info.driver_version == "580.159.04"


def test_no_driver_never_runs_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gpu.sys, "platform", "linux")
    monkeypatch.setattr(_gpu._fastpath, "no_driver_reason", lambda *a: "no NVIDIA driver loaded (fake)")
    info = _gpu.detect(run=lambda cmd, timeout: pytest.fail("nvidia-smi must not run"))
    assert not info.available and info.reason == "no NVIDIA driver loaded (fake)"


def test_declared_targets_and_typos() -> None:
    t4 = _gpu.declared("T4")
    assert t4.available and t4.source == "declared" and t4.count == 1 and t4.cc == 7.5
    assert not _gpu.declared("none").available
    with pytest.raises(UsageError, match="did you mean 'h200'"):
        _gpu.declared("h20")


def test_the_declared_gpus_are_data_and_every_one_is_a_usable_target():
    import json

    from envdoctor._env.gpu import TARGETS_FILE, declared, gpu_targets

    raw = json.loads(TARGETS_FILE.read_text(encoding="utf-8"))
    assert raw["schema_version"] == 1 and set(raw["targets"]) == set(gpu_targets())
    for key in gpu_targets():
        info = declared(key)
        assert info.source == "declared" and (info.available is (key != "none"))
    t4 = declared("T4 ")
    assert (t4.name, t4.memory_gib, t4.compute_capability, t4.count) == ("Tesla T4", 15, (7, 5), 1)
