"""Restart detection: a process that imported a package the fix then changes is told to restart (exit 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])              # the venv's site-packages, as a kernel using that venv sees it
import alpha                                 # imported before the fix: this is what goes stale
from envdoctor._fix import apply_plan, from_requirements, plan_fix
from envdoctor._resolver import Sources
target = from_requirements(sys.argv[3])
plan = plan_fix(target, python=sys.argv[2], backend="uv", sources=Sources(no_index=True, find_links=(sys.argv[4],)))
result = apply_plan(plan, target)
print(json.dumps({"exit": result.exit_code, "stale": [(m.module, m.loaded_version, m.installed_version)
                                                      for m in result.stale], "loaded": alpha.__version__}))
"""


def test_a_process_that_imported_a_changed_package_must_restart(tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0", "delta==1.0")
    site = next(Path(python).parent.parent.glob("lib/python*/site-packages"))
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==2.0\ndelta==1.0\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(site), python, str(req), str(wheelhouse)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["exit"] == 3
    assert out["stale"] == [["alpha", "1.0", "2.0"]]  # delta was imported by nobody and did not change
    assert out["loaded"] == "1.0"  # the running process still has the old module: hence the restart


def test_nothing_imported_means_no_restart(tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    site = next(Path(python).parent.parent.glob("lib/python*/site-packages"))
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==2.0\n", encoding="utf-8")
    script = SCRIPT.replace("import alpha ", "alpha = type('m', (), {'__version__': 'not imported'}) ")
    proc = subprocess.run([sys.executable, "-c", script, str(site), python, str(req), str(wheelhouse)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["exit"] == 0


FAKE_KERNEL = r"""
import mmap, subprocess, sys
# A stand-in for a notebook kernel (its command line names ipykernel_launcher) that has loaded an extension
# module of `native`; then, like `!envdoctor fix` in a cell, it runs the CLI as a child process.
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
proc = subprocess.run([sys.executable, "-m", "envdoctor", "fix", "-r", sys.argv[2], "--python", sys.argv[3],
                       "--no-index", "--find-links", sys.argv[4], "--yes", "--backend", sys.argv[5]],
                      capture_output=True, text=True)
print(proc.returncode)
print(proc.stdout)
"""


@pytest.mark.parametrize("backend", ["uv", "pip"])  # pip moves the old files into a '~ative' stash, then deletes it
def test_cli_under_a_fake_kernel_sees_what_the_kernel_loaded(backend, tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    # No Jupyter here: the kernel is faked by its command line; the mapping and the fix are real.
    python = make_venv("native==1.0")
    site = next(Path(python).parent.parent.glob("lib/python*/site-packages"))
    req = tmp_path / "requirements.txt"
    req.write_text("native==2.0\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", FAKE_KERNEL, str(site / "native" / "_core.so"), str(req), python,
                           str(wheelhouse), backend, "ipykernel_launcher"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    code, _, out = proc.stdout.partition("\n")
    assert code == "3", out
    assert "the notebook kernel (pid" in out and "has loaded native" in out
