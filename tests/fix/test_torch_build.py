"""A check that fails on the torch build: its hint leads to a plan that changes the build, or says why fix cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtools import build_wheel, pip

from envdoctor._check import check
from envdoctor._env.gpu import GpuInfo
from envdoctor._fix import from_matrix, plan_fix
from envdoctor._matrix.loader import load_matrix
from envdoctor._resolver import Sources

DRIVER = '\n[gpu.driver]\ncheck = true\nreason = "a CUDA torch needs a driver for its CUDA"\n'
CUDA_TORCH = '[[packages]]\nname = "torch"\nspecifier = "==2.4.0"\nlocal = "cu121"\nreason = "the CUDA build"\n'
ANY_TORCH = '[[packages]]\nname = "torch"\nspecifier = ">=2.0"\nreason = "any build"\n'


@pytest.fixture
def torch_wheels(tmp_path: Path) -> Path:
    """Stand-ins for a CPU and a CUDA torch of one version (a real CUDA build cannot install here)."""
    folder = tmp_path / "torch-wheels"
    folder.mkdir()
    for local in ("cpu", "cu121"):
        build_wheel(folder, "torch", f"2.4.0+{local}", files={"torch/__init__.py": f"__version__ = '2.4.0+{local}'\n"})
    return folder


def test_cpu_torch_against_a_cuda_matrix_plans_the_cuda_build_fake_gpu(make_venv, write_matrix, torch_wheels) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    pip(python, "install", "--no-index", "--find-links", str(torch_wheels), "torch==2.4.0+cpu")
    ref = write_matrix(CUDA_TORCH + DRIVER)
    report = check(ref, python=python, gpu="t4")  # a declared T4: this machine has none
    by = {(f.kind.value, f.subject): f for f in report.problems}
    assert by["package", "torch"].message == "torch 2.4.0+cpu is not the +cu121 build"
    assert by["package", "torch"].fix == f"envdoctor fix --matrix {ref}"
    assert by["gpu", "torch-cuda"].fix == f"envdoctor fix --matrix {ref} (installs the matrix's torch build)"
    plan = plan_fix(from_matrix(load_matrix(ref)), python=python, backend="pip",
                    sources=Sources(no_index=True, find_links=(str(torch_wheels),)),
                    gpu=lambda: GpuInfo(False, reason="fake: no NVIDIA driver"))
    assert plan.ok, plan.problems
    assert [(c.name, c.before, c.after) for c in plan.changes] == [("torch", "2.4.0+cpu", "2.4.0+cu121")]
    assert any("no NVIDIA GPU (fake: no NVIDIA driver)" in w for w in plan.warnings)  # said, not refused


def test_a_matrix_without_a_cuda_build_says_why_fix_keeps_the_cpu_torch(make_venv, write_matrix, torch_wheels) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    pip(python, "install", "--no-index", "--find-links", str(torch_wheels), "torch==2.4.0+cpu")
    ref = write_matrix(ANY_TORCH + DRIVER)
    report = check(ref, python=python, gpu="t4")
    (gpu,) = [f for f in report.problems if f.subject == "torch-cuda"]
    assert gpu.fix is not None and "names no CUDA build of torch" in gpu.fix and "envdoctor fix keeps this one" in gpu.fix
    plan = plan_fix(from_matrix(load_matrix(ref)), python=python, backend="pip",
                    sources=Sources(no_index=True, find_links=(str(torch_wheels),)))
    assert plan.ok and not plan.changes  # what the hint said: fix has nothing to change
