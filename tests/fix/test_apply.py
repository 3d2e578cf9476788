"""Apply with real pip in real venvs; faults (a failing step, pip killed, the index gone) leave pip freeze unchanged."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fixtools import freeze, pip, simple_index

from envdoctor._fix import apply_plan, from_matrix, from_requirements, plan_fix
from envdoctor._fix.lock import fix_lock
from envdoctor._fix.workdir import workdir_for
from envdoctor._matrix.loader import load_matrix
from envdoctor._resolver import Sources
from envdoctor.errors import FixError, LockedError


def _req(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(text, encoding="utf-8")
    return path


def _site(python: str) -> Path:
    return next(Path(python).parent.parent.glob("lib/python*/site-packages"))


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_apply_brings_the_venv_to_the_matrix(backend, make_venv, offline, write_matrix) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0", "beta==1.0", "delta==1.0")
    ref = write_matrix('[[packages]]\nname = "beta"\nspecifier = "==2.0"\nreason = "r"\n'
                       '[[absent]]\nname = "delta"\nreason = "r"\n')
    target = from_matrix(load_matrix(ref))
    plan = plan_fix(target, python=python, backend=backend, sources=offline)
    result = apply_plan(plan, target)
    assert result.ok, result.reason
    assert result.changed == {"alpha": ("1.0", "2.0"), "beta": ("1.0", "2.0"), "delta": ("1.0", None)}
    assert result.exit_code == 0 and not result.stale
    lines = freeze(python).splitlines()
    assert "alpha==2.0" in lines and "beta==2.0" in lines and not any(x.startswith("delta") for x in lines)
    assert Path(result.log).read_text().count("$ ") == 2  # the tool's own output is kept in the log file


def test_a_step_that_fails_midway_is_rolled_back(make_venv, offline, write_matrix) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0", "beta==1.0", "delta==1.0")
    before = freeze(python)
    ref = write_matrix('''
[[install_groups]]
name = "one"
order = 1
[[install_groups]]
name = "two"
order = 2
[[packages]]
name = "beta"
specifier = "==2.0"
group = "one"
reason = "r"
[[packages]]
name = "clash"
specifier = "==1.0"
group = "two"
reason = "this wheel resolves but cannot install"
[[absent]]
name = "delta"
reason = "r"
''')
    target = from_matrix(load_matrix(ref))
    plan = plan_fix(target, python=python, backend="pip", sources=offline)
    assert plan.ok and len(plan.steps) == 3
    result = apply_plan(plan, target)
    assert not result.ok and result.failed_step == 2
    assert "Is a directory" in result.reason
    assert result.rollback is not None and result.rollback.verified, result.rollback
    assert freeze(python) == before
    assert (_site(python) / "alpha" / "__init__.py").read_text() == "__version__ = '1.0'\n"


def test_the_installer_killed_midway_is_rolled_back(tmp_path, make_venv, offline) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("bulky==1.0")
    before = freeze(python)
    site = _site(python)
    plan = plan_fix(from_requirements(_req(tmp_path, "bulky==2.0\n")), python=python, backend="pip", sources=offline)
    killed = []

    def kill_when_half_done(cmd, log, on_line):  # type: ignore[no-untyped-def]
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if (site / "bulky" / "new_0100.py").exists():  # the old version is gone, the new half-written
                proc.send_signal(signal.SIGKILL)
                killed.append(True)
                break
            time.sleep(0.001)
        return proc.wait()

    result = apply_plan(plan, from_requirements(_req(tmp_path, "bulky==2.0\n")), runner=kill_when_half_done)
    assert killed, "pip finished before it could be killed: the fault was not injected"
    assert not result.ok and "exit status -9" in result.reason
    assert result.rollback.verified
    assert freeze(python) == before
    assert (site / "bulky" / "old_1499.py").exists() and not (site / "bulky" / "new_0100.py").exists()
    assert not [p for p in site.iterdir() if p.name.startswith("~")]  # pip's stash folders are cleaned


def test_an_unreachable_index_is_rolled_back(tmp_path, make_venv, wheelhouse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PIP_RETRIES", "0")
    python = make_venv("alpha==1.0", "delta==1.0")
    before = freeze(python)
    index = simple_index(wheelhouse, tmp_path / "simple")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        path = tmp_path / "m.toml"
        path.write_text('schema_version = 1\nname = "m"\nversion = "1"\n[[packages]]\nname = "alpha"\n'
                        'specifier = "==2.0"\nreason = "r"\n[[absent]]\nname = "delta"\nreason = "r"\n')
        target = from_matrix(load_matrix(str(path)))
        plan = plan_fix(target, python=python, backend="pip", sources=Sources(index_url=url))
        assert plan.ok and [s.kind for s in plan.steps] == ["uninstall", "install"]
    finally:
        server.shutdown()
        server.server_close()  # the index is gone between plan and apply
    result = apply_plan(plan, target)
    assert not result.ok and result.failed_step == 1
    assert result.rollback.verified and result.rollback.restored == ("delta",)
    assert freeze(python) == before


def test_a_second_fix_on_the_same_environment_is_refused(tmp_path, make_venv, offline) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    plan = plan_fix(from_requirements(_req(tmp_path, "alpha==2.0\n")), python=python, backend="uv", sources=offline)
    holder = subprocess.Popen(  # a second envdoctor process that holds this environment's fix lock
        [sys.executable, "-c", "import sys,time; from pathlib import Path; from envdoctor._fix.lock import fix_lock\n"
         "with fix_lock(Path(sys.argv[1]), sys.argv[2]):\n print('held', flush=True); time.sleep(60)",
         str(workdir_for(plan.prefix)), plan.prefix], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match="another envdoctor fix is running"):
            apply_plan(plan)
    finally:
        holder.kill()
        holder.wait()
    with fix_lock(workdir_for(plan.prefix), plan.prefix):
        pass  # released and free again
    assert "alpha==1.0" in freeze(python)


def test_freeze_helper_sees_real_state(make_venv) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    assert "alpha==1.0" in freeze(python).splitlines()
    assert os.path.exists(python)


def test_a_venv_without_pip_is_fixed_and_rolled_back_with_uv(tmp_path, wheelhouse, offline) -> None:  # type: ignore[no-untyped-def]
    # uv makes venvs without pip: the installer is uv, and freeze/rollback use envdoctor's pip with --python.
    from envdoctor._resolver import find_uv

    venv = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([find_uv(), "pip", "install", "-q", "--python", python, "--no-index", "--find-links",
                    str(wheelhouse), "alpha==1.0", "beta==1.0"], check=True)
    from envdoctor._fix.snapshot import pip_freeze

    before = pip_freeze(python)
    req = _req(tmp_path, "beta==1.0\nalpha==1.0\nclash==1.0\ndelta==1.0\n")
    target = from_requirements(req)
    result = apply_plan(plan_fix(target, python=python, backend="uv", sources=offline), target)
    assert not result.ok and result.rollback.verified
    assert pip_freeze(python) == before


def test_public_fix_and_plan_fix_by_requirements_file(tmp_path, make_venv, offline) -> None:  # type: ignore[no-untyped-def]
    from envdoctor._fix.api import fix
    from envdoctor._fix.api import plan_fix as public_plan
    from envdoctor.errors import ResolutionError

    python = make_venv("alpha==1.0")
    plan = public_plan(requirements=_req(tmp_path, "alpha==2.0\n"), python=python, sources=offline)
    assert [c.after for c in plan.changes] == ["2.0"]
    assert fix(requirements=_req(tmp_path, "alpha==2.0\n"), python=python, sources=offline).ok
    with pytest.raises(ResolutionError, match="nothing was changed"):
        fix(requirements=_req(tmp_path, "gamma==1.0\nbeta==2.0\n"), python=python, sources=offline)
    assert "alpha==2.0" in freeze(python)


def test_a_package_that_installs_but_does_not_import_is_rolled_back(tmp_path, make_venv, offline, write_matrix) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    before = freeze(python)
    target = from_requirements(_req(tmp_path, "alpha==2.0\nsick==1.0\n"))
    result = apply_plan(plan_fix(target, python=python, backend="uv", sources=offline), target)
    assert not result.ok and "import sick (sick) fails after the fix: ImportError: needs a GPU driver" in result.reason
    assert result.rollback.verified and freeze(python) == before
    # installed --no-deps (the matrix knows its own requirements are not met): a warning, not a rollback
    ref = write_matrix('[[packages]]\nname = "sick"\nspecifier = "==1.0"\nno_deps = true\nreason = "r"\n')
    target = from_matrix(load_matrix(ref))
    result = apply_plan(plan_fix(target, python=python, backend="uv", sources=offline), target)
    assert result.ok and any("import sick" in w and "--no-deps" in w for w in result.warnings)


INTERRUPTED = r"""
import sys
from envdoctor._cli import main
sys.exit(main(["fix", "-r", sys.argv[1], "--python", sys.argv[2], "--no-index", "--find-links", sys.argv[3],
               "--backend", "pip", "--yes"]))
"""


def test_an_interrupt_midway_stops_pip_and_rolls_back(tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    # A notebook's interrupt (or kill -INT) reaches envdoctor only, not pip: envdoctor must stop pip itself,
    # then restore. Before, the interrupt left bulky uninstalled, half-written, and pip's '~' stash behind.
    python = make_venv("bulky==1.0")
    before = freeze(python)
    site = _site(python)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, str(_req(tmp_path, "bulky==2.0\n")), python,
                             str(wheelhouse)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and not (site / "bulky" / "new_0100.py").exists():
        time.sleep(0.001)
    assert proc.poll() is None, "the fix finished before it could be interrupted: the fault was not injected"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "fix failed at step 1: interrupted" in out and "rolled back (verified" in out
    assert freeze(python) == before
    assert (site / "bulky" / "old_1499.py").exists() and not (site / "bulky" / "new_0100.py").exists()
    assert not [p for p in site.iterdir() if p.name.startswith("~")]


def test_a_plan_is_not_applied_to_an_environment_that_changed_since(tmp_path, make_venv, wheelhouse, offline) -> None:  # type: ignore[no-untyped-def]

    python = make_venv("alpha==1.0", "beta==1.0")
    target = from_requirements(_req(tmp_path, "beta==2.0\n"))
    plan = plan_fix(target, python=python, backend="uv", sources=offline)
    pip(python, "install", "--no-index", "--find-links", str(wheelhouse), "alpha==2.0", "beta==2.0", "gamma==1.0",
        "--no-deps")  # someone else changed the venv between the plan and the apply
    before = freeze(python)
    with pytest.raises(FixError, match="changed since the plan was made .*alpha is 2.0, the plan expected 1.0"):
        apply_plan(plan, target)
    assert freeze(python) == before
