"""The probe registry and the subprocess runner: results, timeouts, crashes, plugins through entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from envdoctor._certify import registry
from envdoctor._certify.registry import ProbeContext
from envdoctor._certify.runner import run_probe


def _ctx(**params: object) -> ProbeContext:
    matrix = {"name": "t", "packages": {}, "import_names": ["json", "fake_ext", "not_installed_anywhere"]}
    return ProbeContext(device="cpu", params=params, matrix=matrix, gpu={}, workdir="")


def _run(name: str, **params: object):  # type: ignore[no-untyped-def]
    spec = registry.get(name)
    assert spec is not None
    return run_probe(spec, spec.tier, _ctx(**params))


def test_builtin_probes_are_registered_with_the_names_the_matrices_use() -> None:
    names = set(registry.all_probes())
    assert {"imports", "cuda-available", "cuda-arch", "bf16-matmul", "bnb-nf4-matmul", "bnb-8bit-optim",
            "llama31-rope", "training-args", "tiny-qlora", "tiny-galore"} <= names


def test_every_probe_named_by_a_bundled_matrix_exists() -> None:
    from envdoctor._matrix.loader import available, load_matrix

    for entry in available():
        for p in load_matrix(str(entry.path)).probes:
            assert registry.get(p.name) is not None, f"{entry.ref} names unknown probe {p.name!r}"


def test_importing_the_registry_imports_no_heavy_module() -> None:
    import subprocess

    # pydantic does load: each probe's params model is one (the guard never loads the registry)
    code = ("import sys, envdoctor._certify as c; c.all_probes(); "
            "print([m for m in ('torch', 'transformers', 'bitsandbytes', 'peft', 'trl') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_register_probe_rejects_what_cannot_run_in_a_subprocess() -> None:
    def local(ctx):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(ValueError, match="top-level function"):
        registry.register_probe("x-local", 1)(local)
    with pytest.raises(ValueError, match="tier must be 0 to 3"):
        registry.register_probe("x-tier", 7)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_probe("imports", 1)(test_register_probe_rejects_what_cannot_run_in_a_subprocess)


def test_passing_probe_gets_its_params(demo_probes: str) -> None:
    res = _run("demo-pass", rank=8)
    assert res.status == "pass" and res.details["seen"] == {"rank": 8} and res.duration_s > 0


def test_exception_is_a_failure_with_the_message_and_a_hint(demo_probes: str) -> None:
    res = _run("demo-raise")
    assert res.status == "fail"
    assert "no kernel image is available" in res.reason and "no kernels for the GPU's architecture" in res.reason
    assert "RuntimeError" in res.details["traceback"]


def test_gpu_out_of_memory_is_inconclusive_not_a_failure(demo_probes: str) -> None:
    res = _run("demo-oom")
    assert res.status == "inconclusive" and "ran out of memory" in res.reason


def test_timeout_is_inconclusive_and_kills_the_probe(demo_probes: str) -> None:
    res = _run("demo-sleep")
    assert res.status == "inconclusive" and res.reason == "timed out after 1 s" and res.duration_s < 30


def test_crash_is_a_failure_naming_the_signal(demo_probes: str) -> None:
    res = _run("demo-abort")
    assert res.status == "fail" and "SIGABRT" in res.reason


def test_a_probe_must_return_an_outcome(demo_probes: str) -> None:
    res = _run("demo-wrong")
    assert res.status == "fail" and "not an Outcome" in res.reason


def test_imports_probe_names_an_abi_break(plugin_dir: Path) -> None:
    (plugin_dir / "fake_ext.py").write_text(
        "raise ImportError('/x/_C.so: undefined symbol: _ZN3c104cuda9SetDeviceEi')\n")
    res = _run("imports", modules=["json", "fake_ext", "not_installed_anywhere"])
    assert res.status == "fail"
    assert "import fake_ext" in res.reason and "another torch/CUDA ABI" in res.reason
    assert "not_installed_anywhere is not installed" in res.reason
    assert res.details["modules"]["json"] == __import__("json").__version__


def test_third_party_probe_through_an_entry_point(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (plugin_dir / "ep_probes.py").write_text(textwrap.dedent('''
        from envdoctor._certify import Outcome, register_probe

        @register_probe("ep-probe", 2, description="from an entry point")
        def ep(ctx):
            return Outcome.passed("plugin ran")
    '''))
    info = plugin_dir / "envdoctor_ep_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: envdoctor-ep-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[envdoctor.probes]\nep = ep_probes\nbroken = no_such_module_x\n")
    saved = registry.all_probes()
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "load_errors", [])
    try:
        spec = registry.get("ep-probe")
        assert spec is not None and spec.description == "from an entry point"
        assert any("no_such_module_x" in e for e in registry.load_errors)
        assert run_probe(spec, 2, _ctx()).status == "pass"
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)
        sys.modules.pop("ep_probes", None)


def test_interrupted_run_kills_the_probe(plugin_dir: Path, tmp_path: Path) -> None:
    """Ctrl-C during a probe: the probe runs in its own session, so the runner must kill it, not orphan it."""
    import os
    import signal
    import subprocess
    import time

    pid_file = tmp_path / "probe.pid"
    (plugin_dir / "sleepy_probe.py").write_text(textwrap.dedent(f'''
        import os, time
        from envdoctor._certify import Outcome, register_probe

        @register_probe("sleepy", 1, timeout=120.0)
        def sleepy(ctx):
            with open({str(pid_file)!r}, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(120)
            return Outcome.passed("slept")
    '''), encoding="utf-8")
    driver = ("import sleepy_probe\nfrom envdoctor._certify import registry\nfrom envdoctor._certify.registry import "
              "ProbeContext\nfrom envdoctor._certify.runner import run_probe\n"
              "run_probe(registry.get('sleepy'), 1, ProbeContext(device='cpu', params={}, matrix={}, gpu={}, workdir=''))\n")
    parent = subprocess.Popen([sys.executable, "-c", driver], stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_file.exists(), "the probe never started"
    probe_pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGINT)
    _, err = parent.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    time.sleep(0.2)
    try:
        os.kill(probe_pid, 0)
    except ProcessLookupError:
        return
    os.kill(probe_pid, signal.SIGKILL)  # do not leave it behind, even on failure
    pytest.fail(f"the probe process {probe_pid} outlived the interrupted run")
