"""Fixtures for certification tests: probe plugins importable by the probe subprocess, fake GPU identities."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from envdoctor._certify import gpuid, registry
from envdoctor._certify.gpuid import GpuIdentity
from envdoctor._env import gpu as _gpu


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as CI sees it: no GPU, whatever the developer's machine has."""
    monkeypatch.setattr(_gpu, "detect", lambda *a, **k: _gpu.GpuInfo(False, reason="no NVIDIA driver loaded"))
    monkeypatch.setattr(gpuid, "current", lambda *a, **k: GpuIdentity((), (), "", "proc", "no NVIDIA driver loaded"))


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path and PYTHONPATH (so the probe subprocess imports it too) for test probe modules."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return folder


@pytest.fixture
def demo_probes(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A third-party probe module with passing, failing, slow, crashing and ill-typed probes, registered."""
    (plugin_dir / "demo_probes.py").write_text(textwrap.dedent('''
        import os, sys, time
        from envdoctor._certify import Outcome, register_probe
        from envdoctor._certify.params import ProbeParams

        class DemoParams(ProbeParams):
            rank: int = 0

        @register_probe("demo-pass", 1, params=DemoParams)
        def ok(ctx):
            """Always passes, echoing its params."""
            return Outcome.passed(f"params {dict(ctx.params)} on {ctx.device}", seen=dict(ctx.params))

        @register_probe("demo-raise", 2)
        def boom(ctx):
            raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

        @register_probe("demo-oom", 2)
        def oom(ctx):
            class OutOfMemoryError(RuntimeError):
                pass
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        @register_probe("demo-sleep", 2, timeout=1.0)
        def slow(ctx):
            time.sleep(60)

        @register_probe("demo-abort", 2)
        def abort(ctx):
            os.abort()

        @register_probe("demo-wrong", 2)
        def wrong(ctx):
            return "yes"

        @register_probe("demo-gpu", 2, gpu="required")
        def gpu(ctx):
            return Outcome.passed("ran")

        @register_probe("demo-tier3", 3, gpu="optional")
        def tier3(ctx):
            return Outcome.passed("ran on " + ctx.device)
    '''), encoding="utf-8")
    saved = registry.all_probes()  # the built-ins, loaded before the plugin registers
    import demo_probes  # noqa: F401  (registers)

    yield "demo_probes"
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    import sys

    sys.modules.pop("demo_probes", None)
