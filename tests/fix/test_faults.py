"""Fault injection on `envdoctor fix` itself: signals at every phase, a second fix, an orphaned installer.

Each case runs the real CLI in a subprocess against a real venv (pip from the local wheelhouse), sends the
fault when the fix is seen in the phase under test (its journal, or the installer it runs), and ends with
`pip freeze` equal to the one before, after `envdoctor fix --rollback` where the fix was killed outright.
The bulky wheel (1500 files) makes a step slow enough to be caught midway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtools import freeze

from envdoctor._fix.lock import alive, read_owner
from envdoctor._fix.workdir import workdir_for

MATRIX = '''
[[install_groups]]
name = "one"
order = 1
[[install_groups]]
name = "two"
order = 2
[[packages]]
name = "bulky"
specifier = "==2.0"
group = "one"
reason = "r"
[[packages]]
name = "{second}"
specifier = "==1.0"
group = "two"
reason = "r"
'''


def envdoctor(*args: str) -> list[str]:
    return [sys.executable, "-m", "envdoctor", *args]


def fix_args(ref: str, python: str, wheelhouse: Path, *extra: str) -> list[str]:
    return envdoctor("fix", "--matrix", ref, "--python", python, "--backend", "pip", "--no-index",
                     "--find-links", str(wheelhouse), "--yes", *extra)


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below `pid`, from /proc."""
    out: list[tuple[int, str]] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(c) for t in Path(f"/proc/{p}/task").iterdir()
                    for c in (t / "children").read_text().split()]
        except OSError:
            continue
        for k in kids:
            try:
                cmd = Path(f"/proc/{k}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            out.append((k, cmd))
            todo.append(k)
    return out


def phase(work: Path) -> str | None:
    try:
        return str(json.loads((work / "fix-state.json").read_text())["phase"])
    except (OSError, ValueError, KeyError):
        return None


def _site(python: str) -> Path:
    return next(Path(python).parent.parent.glob("lib/python*/site-packages"))


def when(phase_name: str, python: str, work: Path) -> Callable[[int], bool]:
    """A predicate on the fix's pid: True once the fix is in `phase_name`."""
    site = _site(python)

    def planning(pid: int) -> bool:
        return any("--dry-run" in cmd for _, cmd in descendants(pid))

    def snapshot(pid: int) -> bool:
        return phase(work) == "snapshot" and any(" freeze" in cmd for _, cmd in descendants(pid))

    def step(pid: int) -> bool:
        return (site / "bulky" / "new_0100.py").exists()

    return {"planning": planning, "snapshot": snapshot, "step": step,
            "verify": lambda pid: phase(work) == "verify",
            "rollback": lambda pid: phase(work) == "rollback"}[phase_name]


def run_until(cmd: list[str], ready: Callable[[int], bool], sig: int, timeout: float = 120) -> subprocess.Popen[str]:
    """Start `cmd`, send `sig` the moment `ready(pid)` holds; the fault must have been injected."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        if ready(proc.pid):
            proc.send_signal(sig)
            return proc
        time.sleep(0.001)
    out, err = proc.communicate(timeout=60)
    raise AssertionError(f"the fix ended (rc {proc.returncode}) before the fault could be injected:\n{out}\n{err}")


def wait_for_orphans(work: Path, timeout: float = 120) -> None:
    """A killed fix's installer goes on; the test waits for it like a user would."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        owner = read_owner(work)
        if owner is None or not alive(owner.installer, owner.installer_start):
            return
        time.sleep(0.05)
    raise AssertionError("the orphaned installer did not finish")


@pytest.fixture
def bulky_venv(make_venv, write_matrix):  # type: ignore[no-untyped-def]
    """A venv with bulky 1.0 and alpha 1.0, the matrix that upgrades bulky then installs `second`, freeze before."""

    def make(second: str = "delta") -> tuple[str, str, Path, str]:
        python = make_venv("bulky==1.0", "alpha==1.0")
        ref = write_matrix(MATRIX.format(second=second))
        return python, ref, workdir_for(str(Path(python).parent.parent)), freeze(python)

    return make


CAUGHT = [pytest.param(s, p, id=f"{s.name}-{p}") for s in (signal.SIGTERM, signal.SIGHUP)
          for p in ("planning", "snapshot", "step", "verify", "rollback") if s == signal.SIGTERM or p in ("step", "planning")]


@pytest.mark.parametrize(("sig", "at"), CAUGHT)
def test_sigterm_and_sighup_roll_back_like_ctrl_c(sig, at, bulky_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python, ref, work, before = bulky_venv("clash" if at == "rollback" else "delta")
    proc = run_until(fix_args(ref, python, wheelhouse), when(at, python, work), sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, (out, err)
    assert "Traceback" not in err, err
    if at in ("step", "verify"):
        assert f"interrupted by {sig.name}" in out and "rolled back (verified" in out, (out, err)
    assert freeze(python) == before
    assert phase(work) is None  # the journal is cleared: nothing is half-changed
    assert not [e for e in _site(python).iterdir() if e.name.startswith("~")]
    wait_for_orphans(work)
    assert not read_owner(work) or not alive(read_owner(work).installer)  # type: ignore[union-attr]


@pytest.mark.parametrize("at", ["planning", "snapshot", "step", "verify", "rollback"])
def test_sigkill_at_each_phase_is_reported_and_rolled_back(at, bulky_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python, ref, work, before = bulky_venv("clash" if at == "rollback" else "delta")
    proc = run_until(fix_args(ref, python, wheelhouse), when(at, python, work), signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    wait_for_orphans(work)
    half = phase(work) in ("steps", "verify", "rollback")
    if half:
        check = subprocess.run(envdoctor("check", "--python", python, "--matrix", ref), capture_output=True,
                               text=True, timeout=120)
        assert "an interrupted fix left this environment half-changed" in check.stderr, check.stderr
        assert "envdoctor fix --rollback" in check.stderr and check.returncode != 0
        again = subprocess.run(fix_args(ref, python, wheelhouse), capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and "interrupted fix" in again.stderr, again.stderr
        assert "Traceback" not in again.stderr
    back = subprocess.run(envdoctor("fix", "--rollback", "--python", python), capture_output=True, text=True,
                          timeout=120)
    if half or phase(work) == "snapshot":
        assert back.returncode == 0, (back.stdout, back.stderr)
    else:
        assert back.returncode in (0, 2) and "Traceback" not in back.stderr, back.stderr
    assert freeze(python) == before, back.stdout
    assert phase(work) is None
    assert not [e for e in _site(python).iterdir() if e.name.startswith("~")]


def test_the_orphaned_installer_holds_the_lock(bulky_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python, ref, work, before = bulky_venv()
    def installing(pid: int) -> bool:  # the owner file names the step's running installer
        owner = read_owner(work)
        return owner is not None and owner.installer != 0

    proc = run_until(fix_args(ref, python, wheelhouse), installing, signal.SIGKILL)
    proc.communicate(timeout=60)
    owner = read_owner(work)
    assert owner is not None and alive(owner.installer, owner.installer_start), "the installer was not recorded"
    second = subprocess.run(fix_args(ref, python, wheelhouse), capture_output=True, text=True, timeout=120)
    racing = alive(owner.installer, owner.installer_start)
    assert second.returncode in (1, 2) and "Traceback" not in second.stderr
    if racing:  # the orphan still ran when the second fix asked: it named the pid
        assert f"pid {owner.installer}" in second.stderr or "interrupted fix" in second.stderr, second.stderr
    wait_for_orphans(work)
    back = subprocess.run(envdoctor("fix", "--rollback", "--python", python), capture_output=True, text=True,
                          timeout=120)
    assert back.returncode == 0, (back.stdout, back.stderr)
    assert freeze(python) == before


def test_a_concurrent_second_fix_is_refused_and_changes_nothing(bulky_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python, ref, work, before = bulky_venv()
    first = run_until(fix_args(ref, python, wheelhouse), lambda pid: phase(work) == "steps", signal.SIGCONT)
    second = subprocess.run(fix_args(ref, python, wheelhouse), capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and "another envdoctor fix is running" in second.stderr, second.stderr
    first.send_signal(signal.SIGTERM)  # then the first one is stopped too: it rolls back
    out, err = first.communicate(timeout=120)
    assert first.returncode != 0 and "Traceback" not in err, err
    assert freeze(python) == before


def test_a_hand_written_journal_runs_nothing(tmp_path, make_venv, wheelhouse, write_matrix) -> None:  # type: ignore[no-untyped-def]
    # Issue 15, finding 4: `fix --resume` replayed argv from fix-state.json.
    from envdoctor._fix.snapshot import new_snapshot_folder

    python = make_venv("alpha==1.0")
    before = freeze(python)
    work = workdir_for(str(Path(python).parent.parent))
    work.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / "pwned"
    ref = write_matrix('[[packages]]\nname = "alpha"\nspecifier = "==2.0"\nreason = "r"\n')
    subprocess.run(fix_args(ref, python, wheelhouse, "--dry-run", "--format", "json"), capture_output=True,
                   text=True, timeout=120, check=True)
    plan = json.loads(subprocess.run(fix_args(ref, python, wheelhouse, "--dry-run", "--format", "json"),
                                     capture_output=True, text=True, timeout=120).stdout)["plan"]
    for k in ("ok", "resolutions"):
        plan.pop(k, None)
    plan["steps"][0]["command"] = ["/bin/sh", "-c", f"touch {marker}"]
    folder = new_snapshot_folder(work)
    state = {"state_version": 2, "plan": plan, "snapshot": str(folder), "next_step": 0, "phase": "steps",
             "pid": 999999, "updated": 0.0}
    (work / "fix-state.json").write_text(json.dumps(state))
    resumed = subprocess.run(envdoctor("fix", "--resume", "--python", python), capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 2 and "nothing from it is run" in resumed.stderr, resumed.stderr
    assert not marker.exists()
    plan["steps"][0]["command"] = plan["steps"][0]["command"][:1] + ["-c", f"open({str(marker)!r}, 'w')"]
    (work / "fix-state.json").write_text(json.dumps(state))
    resumed = subprocess.run(envdoctor("fix", "--resume", "--python", python), capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 2 and not marker.exists(), resumed.stderr
    assert freeze(python) == before
    assert os.path.exists(work / "fix-state.json")  # refused, not acted on: the user decides


FULL_DISK = r"""
import sys
argv = getattr(sys, "orig_argv", [])
if "pip" in argv and "install" in argv and "--dry-run" not in argv and "bulky==2.0" in argv:
    import errno, shutil
    real, written = shutil.copyfileobj, [0]

    def full(src, dst, *args, **kw):  # pip writes each file of a wheel through copyfileobj
        written[0] += 1
        if written[0] > 300:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kw)

    shutil.copyfileobj = full
"""


def test_a_full_disk_midway_rolls_back_and_says_disk_full(tmp_path, bulky_venv, wheelhouse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # ENOSPC injected into the real pip of the step (a sitecustomize on its PYTHONPATH), 300 files in.
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(FULL_DISK)
    monkeypatch.setenv("PYTHONPATH", str(inject))
    python, ref, work, before = bulky_venv()
    proc = subprocess.run(fix_args(ref, python, wheelhouse), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "fix failed at step 1: disk full" in proc.stdout and "Traceback" not in proc.stderr + proc.stdout
    assert "rolled back (verified" in proc.stdout
    assert freeze(python) == before
    site = _site(python)
    assert not list((site / "bulky").glob("new_*")), "the new version's half-written files stayed behind"
    assert not [e for e in site.iterdir() if e.name.startswith("~")]
    assert phase(work) is None


def test_sigkill_midway_through_fix_rollback_then_rollback_again(bulky_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python, ref, work, before = bulky_venv()
    site = _site(python)
    proc = run_until(fix_args(ref, python, wheelhouse), when("step", python, work), signal.SIGKILL)
    proc.communicate(timeout=60)
    wait_for_orphans(work)  # bulky 2.0 ends up fully installed by the orphan (or half, if it died on its pipe)
    first = run_until(envdoctor("fix", "--rollback", "--python", python),
                      lambda pid: (site / "bulky" / "old_0100.py").exists(), signal.SIGKILL)
    first.communicate(timeout=60)
    assert phase(work) == "steps"  # still recorded as interrupted: check keeps saying so
    back = subprocess.run(envdoctor("fix", "--rollback", "--python", python), capture_output=True, text=True,
                          timeout=120)
    assert back.returncode == 0, (back.stdout, back.stderr)
    assert freeze(python) == before
    assert (site / "bulky" / "old_1499.py").exists() and not list((site / "bulky").glob("new_*"))
    assert phase(work) is None


GUARD = r"""
import sys, envdoctor
try:
    envdoctor.guard(sys.argv[1], tier=0, device="cpu")
except envdoctor.NotCertifiedError as e:
    print(e)
    sys.exit(1)
"""


def test_certify_and_guard_report_an_interrupted_fix(tmp_path, bulky_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python, ref, work, before = bulky_venv()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    # certify and guard look at their own interpreter: put envdoctor on the venv's path after its own packages
    pth = _site(python) / "zz-envdoctor.pth"
    here = next(p for p in sys.path if p.endswith("site-packages"))
    pth.write_text(f"{Path(__file__).resolve().parents[2] / 'src'}\n{here}\n", encoding="utf-8")
    certified = subprocess.run([python, "-m", "envdoctor", "certify", "--matrix", ref, "--tier", "0", "--device",
                                "cpu"], capture_output=True, text=True, timeout=120, env=env)
    assert certified.returncode == 1  # bulky 1.0 is not the matrix's 2.0: a certificate would be refused anyway
    text = pth.read_text(encoding="utf-8")
    pth.unlink()  # the fix snapshots the venv's own path (a .pth naming another site refuses its rollback)
    proc = run_until(fix_args(ref, python, wheelhouse), when("step", python, work), signal.SIGKILL)
    proc.communicate(timeout=60)
    wait_for_orphans(work)
    pth.write_text(text, encoding="utf-8")
    again = subprocess.run([python, "-m", "envdoctor", "certify", "--matrix", ref, "--tier", "0", "--device", "cpu"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 1 and "an interrupted fix left this environment half-changed" in again.stderr
    assert "certify does not certify" in again.stderr and "Traceback" not in again.stderr
    status = subprocess.run([python, "-m", "envdoctor", "certify", "--matrix", ref, "--status"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert status.returncode == 1 and "an interrupted fix left" in status.stderr
    guarded = subprocess.run([python, "-c", GUARD, ref], capture_output=True, text=True, timeout=120, env=env)
    assert guarded.returncode == 1, guarded.stderr
    assert "an interrupted fix left this environment half-changed" in guarded.stdout
    assert f"envdoctor fix --rollback --python {python}" in guarded.stdout
    pth.unlink()  # before the freeze: the .pth would list envdoctor's own packages
    back = subprocess.run(envdoctor("fix", "--rollback", "--python", python), capture_output=True, text=True,
                          timeout=120)
    assert back.returncode == 0, (back.stdout, back.stderr)
    assert freeze(python) == before
