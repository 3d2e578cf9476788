"""--resume: a fix whose process died between steps continues; --restart kills the (fake) kernel and resumes."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from fixtools import freeze

from envdoctor._cli import main
from envdoctor._fix.state import load_state
from envdoctor._fix.workdir import workdir_for

DIE_AT_STEP_2 = r"""
import os, sys
from envdoctor._fix import apply_plan, from_matrix, plan_fix
from envdoctor._fix.execute import run_command
from envdoctor._matrix.loader import load_matrix
from envdoctor._resolver import Sources
target = from_matrix(load_matrix(sys.argv[2]))
plan = plan_fix(target, python=sys.argv[1], backend="uv", sources=Sources(no_index=True, find_links=(sys.argv[3],)))
calls = []
def runner(cmd, log, on_line):
    calls.append(cmd)
    if len(calls) == 2:
        os._exit(137)   # the kernel dies (OOM, the user's 'nuclear option') between step 1 and step 2
    return run_command(cmd, log, on_line)
apply_plan(plan, target, runner=runner)
"""

MATRIX = '''
[[install_groups]]
name = "one"
order = 1
[[install_groups]]
name = "two"
order = 2
[[packages]]
name = "alpha"
specifier = "==2.0"
group = "one"
reason = "r"
[[packages]]
name = "delta"
specifier = "==1.0"
group = "two"
reason = "r"
'''


def test_resume_continues_after_the_process_died_between_steps(make_venv, wheelhouse, write_matrix, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    ref = write_matrix(MATRIX)
    proc = subprocess.run([sys.executable, "-c", DIE_AT_STEP_2, python, ref, str(wheelhouse)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stderr
    prefix = str(Path(python).parent.parent)
    state = load_state(workdir_for(prefix))
    assert state is not None and state.phase == "steps" and state.next_step == 1
    assert "alpha==2.0" in freeze(python) and "delta" not in freeze(python)
    assert main(["fix", "--resume", "--python", python]) == 0
    assert "delta                        (absent) -> 1.0" in capsys.readouterr().out
    assert "delta==1.0" in freeze(python)
    assert load_state(workdir_for(prefix)) is None


FAKE_KERNEL = r"""
import sys
from envdoctor._cli import main
if sys.argv[4] != "-":  # the notebook has already imported the package the fix changes
    sys.path.append(sys.argv[4])
    import alpha
sys.exit(main(["fix", "-r", sys.argv[1], "--python", sys.argv[2], "--no-index", "--find-links", sys.argv[3],
               "--yes", "--restart"]))
"""


def _fake_kernel(tmp_path: Path, python: str, wheelhouse: Path, imported: bool) -> subprocess.CompletedProcess[str]:
    # No Jupyter here: the "kernel" is a Python process whose command line names ipykernel_launcher.
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==2.0\n", encoding="utf-8")
    site = sysconfig.get_path("purelib", vars={"base": str(Path(python).parent.parent)}) if imported else "-"
    return subprocess.run([sys.executable, "-c", FAKE_KERNEL, str(req), python, str(wheelhouse), site,
                           "ipykernel_launcher"], capture_output=True, text=True, timeout=300)


def test_restart_kills_a_fake_kernel_and_resume_verifies(tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    proc = _fake_kernel(tmp_path, python, wheelhouse, imported=True)
    assert proc.returncode == -9, proc.stderr  # killed, as Colab's runtime restart does
    state = load_state(workdir_for(str(Path(python).parent.parent)))
    assert state is not None and state.phase == "restart"
    assert main(["fix", "--resume", "--python", python]) == 0
    assert "resumed after the restart" in capsys.readouterr().out
    assert "alpha==2.0" in freeze(python)


def test_restart_is_not_done_when_the_kernel_loaded_nothing_the_fix_changed(tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    # The one rule (CLI and notebook alike): --restart restarts only when a restart is required.
    python = make_venv("alpha==1.0")
    proc = _fake_kernel(tmp_path, python, wheelhouse, imported=False)
    assert proc.returncode == 0, proc.stderr
    assert "restarting the kernel" not in proc.stderr and "alpha==2.0" in freeze(python)
    assert load_state(workdir_for(str(Path(python).parent.parent))) is None


def test_restart_outside_a_kernel_is_a_usage_error(tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==2.0\n", encoding="utf-8")
    rc = main(["fix", "-r", str(req), "--python", python, "--no-index", "--find-links", str(wheelhouse), "--yes",
               "--restart"])
    assert rc == 2 and "not running inside a Jupyter or Colab kernel" in capsys.readouterr().err
