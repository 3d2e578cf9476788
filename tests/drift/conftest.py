"""Fixtures for the drift tests: the dev environment's answers, and a real venv with an older transformers/TRL pair."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"
# The older pair the issue names. torch comes first from the machine's CPU wheel (`pip install torch==2.13.0`)
# so that nothing pulls a CUDA torch; every other package is pinned so the resolver has nothing to search.
OLD_PAIR = ["transformers==4.46.3", "trl==0.12.2", "tokenizers==0.20.3", "accelerate==1.2.1", "datasets==3.2.0",
            "huggingface-hub<1.0", "numpy<2.3", "pydantic>=2.5,<3", "platformdirs", "packaging"]
OLD_TORCH = "torch==2.13.0"


def run_probe(python: str, script: str, out: Path, timeout: float = 600) -> dict[str, Any]:
    """Run one of the probe scripts in an interpreter, with this checkout's envdoctor on the path."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "WANDB_DISABLED": "true"}
    proc = subprocess.run([python, str(HERE / script), str(out)], capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8"))


def _build_old_pair(root: Path) -> str:
    python = root / "venv" / "bin" / "python"
    done = root / "done"
    if done.exists() and python.exists():
        return str(python)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(root / "venv")], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for step in ([OLD_TORCH], ["--only-binary", ":all:", *OLD_PAIR]):
        proc = subprocess.run([*pip, *step], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"pip install {' '.join(step)} failed:\n{proc.stderr[-3000:]}"
    done.write_text("\n".join([OLD_TORCH, *OLD_PAIR]), encoding="utf-8")
    return str(python)


@pytest.fixture(scope="session")
def old_pair_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real venv with transformers 4.46.3 + trl 0.12.2 (+ CPU torch), built once per session.

    ENVDOCTOR_TEST_CACHE keeps it between sessions (about a minute to build).
    """
    cache = os.environ.get("ENVDOCTOR_TEST_CACHE")
    pins = "-".join(p.split("==")[-1] for p in OLD_PAIR[:2])
    root = Path(cache) / f"drift-old-pair-{pins}" if cache else tmp_path_factory.mktemp("drift-old-pair")
    root.mkdir(parents=True, exist_ok=True)
    return _build_old_pair(root)


@pytest.fixture(scope="session")
def new_signatures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the dev environment's transformers/TRL accept."""
    return run_probe(sys.executable, "signatures_probe.py", tmp_path_factory.mktemp("sig") / "new.json")


@pytest.fixture(scope="session")
def old_signatures(old_pair_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What transformers 4.46.3 / trl 0.12.2 accept."""
    return run_probe(old_pair_python, "signatures_probe.py", tmp_path_factory.mktemp("sig") / "old.json")


@pytest.fixture(scope="session")
def probe() -> Any:
    """run_probe(python, script, out) for tests (test modules here are not a package)."""
    return run_probe
