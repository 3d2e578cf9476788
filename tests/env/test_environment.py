"""The environment model reads real dist-info folders, tolerates broken ones, and inspects other venvs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from envdoctor._env.environment import inspect_environment
from envdoctor.errors import InspectionError
from envdoctor.testing import fake_environment, make_dist


def test_reads_name_version_requires(site: Path, dist) -> None:
    dist("Transformers", "4.46.3", ["tokenizers<0.21,>=0.20", 'torch>=2.0; extra == "torch"'])
    env = fake_environment(site)
    d = env.get("transformers")
    assert d is not None and str(d.version) == "4.46.3"
    assert d.requires == ("tokenizers<0.21,>=0.20", 'torch>=2.0; extra == "torch"')


def test_broken_metadata_is_recorded_not_fatal(site: Path, dist) -> None:
    dist("good", "1.0")
    (site / "empty-1.0.dist-info").mkdir()
    dist("noversion", "1.0", metadata="Metadata-Version: 2.1\nName: noversion\n")
    dist("badver", "1.0", metadata="Metadata-Version: 2.1\nName: badver\nVersion: not a version\n")
    env = fake_environment(site)
    assert env.get("good") is not None
    reasons = " | ".join(b.reason for b in env.broken)
    assert "cannot read METADATA" in reasons and "has no Version" in reasons and "invalid version" in reasons


def test_duplicates_first_on_path_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    make_dist(first, "numpy", "1.26.4")
    make_dist(second, "numpy", "2.1.0")
    env = fake_environment(first, second)
    assert str(env.version_of("numpy")) == "1.26.4"
    assert env.duplicates[0].shadowed_version == "2.1.0"


def test_torch_cuda_build_from_metadata(site: Path, dist) -> None:
    dist("torch", "2.4.0+cu118")
    assert fake_environment(site).torch_cuda == "11.8"


def test_torch_cuda_from_nvidia_runtime_requirement(site: Path, dist) -> None:
    dist("torch", "2.4.0", ['nvidia-cuda-runtime-cu12==12.1.105; platform_system == "Linux"'])
    assert fake_environment(site).torch_cuda == "12.1"


def test_cpu_torch_has_no_cuda(site: Path, dist) -> None:
    dist("torch", "2.13.0+cpu")
    assert fake_environment(site).torch_cuda is None


def test_python_flag_inspects_a_real_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    make_dist(Path(purelib), "peft", "0.13.2", ["torch>=1.13.0"])
    env = inspect_environment(python=str(venv / "bin" / "python"), gpu="none")
    assert str(env.version_of("peft")) == "0.13.2"
    assert env.get("pytest") is None  # not this interpreter's packages
    assert env.executable.startswith(str(venv))
    # a venv folder works as well as its interpreter
    assert str(inspect_environment(python=str(venv), gpu="none").version_of("peft")) == "0.13.2"


def test_python_flag_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InspectionError, match="no such interpreter"):
        inspect_environment(python=str(tmp_path / "nope"), gpu="none")
    bad = tmp_path / "python"
    bad.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    bad.chmod(0o755)
    with pytest.raises(InspectionError, match="the interpreter failed: broken"):
        inspect_environment(python=str(bad), gpu="none")


def test_torch_cuda_from_cuda_toolkit_requirement(site: Path, dist) -> None:
    # torch >= 2.10 on the index requires the cuda-toolkit metapackage instead of nvidia-cuda-runtime-cu12
    dist("torch", "2.11.0", ['cuda-toolkit[cublas,cudart,cufft]==13.0.2; platform_system == "Linux"'])
    assert fake_environment(site).torch_cuda == "13.0"


@pytest.mark.parametrize(("line", "expected"), [("cuda: Optional[str] = '12.4'", "12.4"),
                                                 ("cuda: Optional[str] = None", None)])
def test_torch_cuda_from_torch_version_py(site: Path, dist, line: str, expected: str | None) -> None:
    dist("torch", "2.11.0")  # no label, no requirement: only torch/version.py knows
    (site / "torch").mkdir()
    (site / "torch" / "version.py").write_text(f"__version__ = '2.11.0'\n{line}\nhip = None\n")
    assert fake_environment(site).torch_cuda == expected


def test_same_folder_twice_on_path_is_not_a_duplicate(site: Path, dist, tmp_path: Path) -> None:
    dist("numpy", "1.26.4")
    link = tmp_path / "link"
    link.symlink_to(site)
    assert fake_environment(site, link).duplicates == ()
