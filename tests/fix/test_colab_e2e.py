"""End to end on a Colab-shaped environment: check -> fix (exit 3 under a kernel) -> --restart -> --resume -> certify.

What is real: the venv, pip, the installs and uninstalls from a local wheelhouse, the restart detection (the
kernel maps a changed package's file), the kernel's SIGKILL, the journal, the certificate. What is faked: the
packages are small wheels named and versioned as in Colab's published pip freeze (../shared/colab/7a0599e:
Python 3.12, torch 2.8.0+cu126) and as the llama31@2024.12 stack pins them, with their Requires-Dist as
published; torch 2.8.0+cu126 and what nothing changes are *.dist-info folders only (make_dist), torch's relabelled
from this machine's real CPU torch; Colab is COLAB_RELEASE_TAG; the kernel is a process whose command line
names colab_kernel_launcher. The interpreter is this one's (3.11), not Colab's 3.12.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from fixtools import build_wheel, pip

from envdoctor.testing import make_dist

pytestmark = pytest.mark.slow

# Colab 7a0599e's versions of what the target changes, and the llama31@2024.12 pins (Requires-Dist as published).
WHEELS = {
    ("transformers", "4.57.0"): ["filelock", "huggingface-hub<1.0,>=0.34.0", "numpy>=1.17", "packaging>=20.0",
                                 "pyyaml>=5.1", "regex!=2019.12.17", "requests", "tokenizers<=0.23.0,>=0.22.0",
                                 "safetensors>=0.4.3", "tqdm>=4.27"],
    ("transformers", "4.46.3"): ["filelock", "huggingface-hub<1.0,>=0.23.2", "numpy>=1.17", "packaging>=20.0",
                                 "pyyaml>=5.1", "regex!=2019.12.17", "requests", "tokenizers<0.21,>=0.20",
                                 "safetensors>=0.4.1", "tqdm>=4.27"],
    ("tokenizers", "0.22.1"): ["huggingface-hub<2.0,>=0.16.4"],
    ("tokenizers", "0.20.3"): ["huggingface-hub<1.0,>=0.16.4"],
    ("peft", "0.17.1"): ["numpy>=1.17", "packaging>=20.0", "psutil", "pyyaml", "torch>=1.13.0", "transformers",
                         "tqdm", "accelerate>=0.21.0", "safetensors", "huggingface-hub>=0.25.0"],
    ("peft", "0.13.2"): ["numpy>=1.17", "packaging>=20.0", "psutil", "pyyaml", "torch>=1.13.0", "transformers",
                         "tqdm", "accelerate>=0.21.0", "safetensors", "huggingface-hub>=0.17.0"],
    ("accelerate", "1.10.1"): ["numpy<3.0.0,>=1.17", "packaging>=20.0", "psutil", "pyyaml", "torch>=2.0.0",
                               "huggingface-hub>=0.21.0", "safetensors>=0.4.3"],
    ("accelerate", "1.2.1"): ["numpy<3.0.0,>=1.17", "packaging>=20.0", "psutil", "pyyaml", "torch>=1.10.0",
                              "huggingface-hub>=0.21.0", "safetensors>=0.4.3"],
    ("trl", "0.12.2"): ["accelerate>=0.34.0", "datasets>=2.21.0", "rich", "transformers<4.47.0"],
}
COLAB = ["transformers==4.57.0", "tokenizers==0.22.1", "peft==0.17.1", "accelerate==1.10.1"]
# Installed on Colab and left alone by the target: metadata only (datasets and tensorflow trimmed to these deps).
STILL = {"huggingface-hub": ("0.35.3", ["filelock", "fsspec>=2023.5.0", "packaging>=20.9", "pyyaml>=5.1",
                                         "requests", "tqdm>=4.42.1", "typing-extensions>=3.7.4.3"]),
         "datasets": ("4.0.0", ["filelock", "numpy>=1.17", "requests>=2.32.2", "tqdm>=4.66.3",
                                "fsspec<=2025.3.0,>=2023.1.0", "huggingface-hub>=0.24.0", "packaging", "pyyaml>=5.1"]),
         "tensorflow": ("2.19.0", ["numpy<2.2.0,>=1.26.0", "packaging", "requests<3,>=2.21.0",
                                   "typing-extensions>=3.6.6"]),
         "numpy": ("2.0.2", []), "fsspec": ("2025.3.0", []), "filelock": ("3.20.0", []), "packaging": ("25.0", []),
         "pyyaml": ("6.0.3", []), "regex": ("2024.11.6", []), "requests": ("2.32.4", []), "tqdm": ("4.67.1", []),
         "safetensors": ("0.6.2", []), "psutil": ("5.9.5", []), "rich": ("13.9.4", []),
         "typing-extensions": ("4.15.0", []), "sympy": ("1.13.3", []), "networkx": ("3.5", []),
         "jinja2": ("3.1.6", []), "mpmath": ("1.3.0", []), "markupsafe": ("3.0.3", [])}

MATRIX = """
[[packages]]
name = "torch"
specifier = "==2.4.0"
local = "cpu"
protected = true
reason = "llama31@2024.12's torch, as the CPU build this machine can run"

[[packages]]
name = "transformers"
specifier = "==4.46.3"
reason = "llama31@2024.12"

[[packages]]
name = "tokenizers"
specifier = "==0.20.3"
reason = "llama31@2024.12"

[[packages]]
name = "peft"
specifier = "==0.13.2"
reason = "llama31@2024.12"

[[packages]]
name = "accelerate"
specifier = "==1.2.1"
reason = "llama31@2024.12"

[[packages]]
name = "trl"
specifier = "==0.12.2"
reason = "llama31@2024.12"

[[probes]]
name = "imports"
tier = 1
params = { modules = ["torch", "transformers", "tokenizers", "peft", "accelerate", "trl"] }
"""

KERNEL = r"""
import mmap, subprocess, sys
# Colab's kernel has tokenizers' extension module mapped; then a cell runs `!envdoctor fix ... --restart`.
# (the last argument only names colab_kernel_launcher on its command line, as Colab's kernel has)
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
with open(sys.argv[2], "w") as out:
    child = subprocess.Popen([sys.executable, "-m", "envdoctor", "fix", *sys.argv[4:-1]], stdout=out,
                             stderr=subprocess.STDOUT)
    open(sys.argv[3], "w").write(str(child.pid))
    print("fix exited", child.wait(), file=out)
"""


def _torch_metadata(version: str) -> tuple[str, list[str]]:
    """This machine's real CPU torch METADATA relabelled to `version` (setuptools dropped: 2.4/2.8 do not need it)."""
    real = metadata.distribution("torch")
    text = real.read_text("METADATA") or ""
    text = re.sub(r"^Version: .*$", f"Version: {version}", text, count=1, flags=re.M)
    requires = [r for r in real.requires or () if "extra ==" not in r and not r.startswith("setuptools")]
    text = "\n".join(line for line in text.splitlines() if not line.startswith("Requires-Dist: setuptools"))
    return text + "\n", requires


@pytest.fixture(scope="module")
def colab_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wh = tmp_path_factory.mktemp("colab-wheels")
    for (name, version), requires in WHEELS.items():
        files = {f"{name}/__init__.py": f"__version__ = {version!r}\n"}
        if name == "tokenizers":  # the extension module Colab's kernel maps
            files[f"{name}/tokenizers.abi3.so"] = f"not really ELF {version}\n" * 64
        if name == "transformers":  # what the imports probe asks of it
            files["transformers/utils/__init__.py"] = "def is_torch_available():\n    return True\n"
        build_wheel(wh, name, version, requires, files=files)
    _, requires = _torch_metadata("2.4.0+cpu")
    build_wheel(wh, "torch", "2.4.0+cpu", requires, files={"torch/__init__.py": "__version__ = '2.4.0+cpu'\n"})
    return wh


def _run(env: dict[str, str], *args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "envdoctor", *args], capture_output=True, text=True, env=env, timeout=120)


def test_colab_shaped_fake_cu126_torch_fake_kernel_check_fix_restart_resume_certify(  # type: ignore[no-untyped-def]
        tmp_path, make_venv, colab_wheels) -> None:
    python = make_venv()
    site = next(Path(python).parent.parent.glob("lib/python*/site-packages"))
    for name, (version, requires) in STILL.items():
        make_dist(site, name, version, requires)
    text, _ = _torch_metadata("2.8.0+cu126")
    torch = make_dist(site, "torch", "2.8.0+cu126", metadata=text,
                      files={"torch/__init__.py": "__version__ = '2.8.0+cu126'\n"})
    # pip's RECORD lists the dist-info's own files, so that an uninstall removes the folder (make_dist's does not)
    with open(torch / "RECORD", "a", encoding="utf-8") as record:
        record.write(f"{torch.name}/METADATA,,\n{torch.name}/INSTALLER,,\n")
    pip(python, "install", "--no-deps", "--no-index", "--find-links", str(colab_wheels), *COLAB)
    matrix = tmp_path / "llama31-colab.toml"
    matrix.write_text('schema_version = 1\nname = "llama31-colab"\nversion = "2024.12"\n' + MATRIX, encoding="utf-8")
    env = {**os.environ, "COLAB_RELEASE_TAG": "release-colab-fake", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    checked = _run(env, "check", "--matrix", str(matrix), "--python", python)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "2.8.0+cu126" in checked.stdout and f"envdoctor fix --matrix {matrix}" in checked.stdout

    out, pidfile = tmp_path / "fix.out", tmp_path / "fix.pid"
    kernel = subprocess.run([sys.executable, "-c", KERNEL, str(site / "tokenizers" / "tokenizers.abi3.so"), str(out),
                             str(pidfile), "--matrix", str(matrix), "--python", python, "--no-index", "--find-links",
                             str(colab_wheels), "--yes", "--backend", "pip", "--restart", "colab_kernel_launcher"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert kernel.returncode == -9, kernel.stderr  # --restart killed the kernel (Colab starts a fresh one)
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 60
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = out.read_text()
    assert "the notebook kernel (pid" in log and "has loaded tokenizers" in log, log
    # torch is protected by Colab and by the matrix, and the target pins it: no --allow needed (issue 14)
    assert re.search(r"torch +2\.8\.0\+cu126 -> 2\.4\.0\+cpu", log) and "refused" not in log, log
    assert "restarting the kernel" in log and "envdoctor fix --resume" in log, log
    frozen = pip(python, "list", "--format", "freeze")
    for want in ("torch==2.4.0+cpu", "transformers==4.46.3", "tokenizers==0.20.3", "peft==0.13.2",
                 "accelerate==1.2.1", "trl==0.12.2", "tensorflow==2.19.0", "datasets==4.0.0"):
        assert want in frozen.splitlines(), frozen

    resumed = _run(env, "fix", "--resume", "--python", python)  # the fresh kernel's first cell
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed after the restart" in resumed.stdout

    # certify runs inside the environment: envdoctor is on its path after its own packages (a .pth, as an
    # install into Colab would put it), so the fake stack is what the probes import.
    src = Path(__file__).resolve().parents[2] / "src"
    here = next(p for p in sys.path if p.endswith("site-packages"))
    (site / "zz-envdoctor.pth").write_text(f"{src}\n{here}\n", encoding="utf-8")
    certified = _run(env, "certify", "--matrix", str(matrix), "--tier", "1", "--device", "cpu", python=python)
    assert certified.returncode == 0, certified.stdout + certified.stderr
    assert re.search(r"1 +imports +pass", certified.stdout), certified.stdout
