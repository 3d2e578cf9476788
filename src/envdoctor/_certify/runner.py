"""Run one probe in a subprocess of the interpreter being certified, with a timeout; never raises for the probe's sake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .registry import FAIL, INCONCLUSIVE, ProbeContext, ProbeSpec, ProbeStatus

CHILD_MODULE = "envdoctor._certify._child"


@dataclass(frozen=True)
class ProbeResult:
    """One probe's result as recorded in the certificate."""

    name: str
    tier: int
    status: ProbeStatus
    reason: str
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ProbeStatus(self.status))

    def to_dict(self) -> dict[str, Any]:
        """The result as the certificate records it (the status as its plain string)."""
        return {**asdict(self), "status": self.status.value}


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def child_env() -> dict[str, str]:
    """The probe's environment: ours, offline for the Hub (tiny random models only), unbuffered."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")  # tiny random models only: a probe must never download
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_probe(spec: ProbeSpec, tier: int, ctx: ProbeContext, timeout: float | None = None,
              python: str | None = None) -> ProbeResult:
    """Run `spec` in `python -m envdoctor._certify._child` and read its result file; timeouts are inconclusive."""
    limit = float(timeout if timeout is not None else spec.timeout)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"envdoctor-probe-{spec.name}-") as tmp:
        result_file = os.path.join(tmp, "result.json")
        work = os.path.join(tmp, "work")
        os.mkdir(work)
        request = {"target": spec.target, "result": result_file,
                   "context": {**asdict(ctx), "workdir": work}}
        # envdoctor's own folder goes at the END of the child's sys.path, so that it can import the probe
        # runner even from a source checkout, without shadowing anything of the environment under test
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        boot = f"import sys; sys.path.append({here!r}); from {CHILD_MODULE} import main; raise SystemExit(main())"
        cmd = [python or sys.executable, "-c", boot]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=child_env(), cwd=work, start_new_session=True)
        except OSError as e:
            return ProbeResult(spec.name, tier, INCONCLUSIVE, f"cannot start {cmd[0]}: {e.strerror or e}")
        try:
            out, err = proc.communicate(json.dumps(request), timeout=limit)
        except subprocess.TimeoutExpired:
            _kill(proc)
            out, err = proc.communicate()
            return ProbeResult(spec.name, tier, INCONCLUSIVE, f"timed out after {limit:.0f} s",
                               round(time.monotonic() - start, 2), {"stderr_tail": _tail(err)})
        except BaseException:  # Ctrl-C or an error here: the probe runs in its own session and would outlive us
            _kill(proc)
            proc.wait()
            raise
        duration = round(time.monotonic() - start, 2)
        try:
            with open(result_file, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return ProbeResult(spec.name, tier, FAIL, _died(proc.returncode, err), duration,
                               {"stderr_tail": _tail(err), "stdout_tail": _tail(out, 4)})
    details = data.get("details") or {}
    try:
        status = ProbeStatus(data.get("status"))
    except ValueError:  # the child writes an Outcome's status, so only a tampered result file gets here
        return ProbeResult(spec.name, tier, FAIL, f"the probe wrote an unknown status {data.get('status')!r}",
                           duration, details)
    if status is FAIL and err.strip():
        details.setdefault("stderr_tail", _tail(err))
    return ProbeResult(spec.name, tier, status, str(data.get("reason", "")), duration, details)


def _died(code: int | None, err: str) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        how = f"the probe process was killed by {name}"
    else:
        how = f"the probe process exited with status {code} without a result"
    last = (err.strip().splitlines() or [""])[-1]
    return f"{how}: {last}" if last else how


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill the probe and everything it started (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()
