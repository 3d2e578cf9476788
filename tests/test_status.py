"""The live status of a resolution: silent by default, a line with elapsed seconds when the CLI installs one."""

from __future__ import annotations

import io
import time

from envdoctor._status import Resolving, Terminal, current, reporting, resolving, run_with_status

JOB = Resolving("uv", ("transformers==4.46.3", "trl==0.12.2", "peft", "accelerate"), "3.11", "linux x86_64")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []

    def started(self, job: Resolving) -> None:
        self.events.append(("started", 0.0))

    def tick(self, job: Resolving, elapsed: float) -> None:
        self.events.append(("tick", elapsed))

    def finished(self, job: Resolving, elapsed: float, ok: bool) -> None:
        self.events.append(("ok" if ok else "failed", elapsed))


def test_silent_unless_a_reporter_is_installed() -> None:
    assert run_with_status(JOB, lambda: 42) == 42 and type(current()).__name__ == "Silent"


def test_the_reporter_hears_start_ticks_and_the_end() -> None:
    with reporting(Recorder()) as rec:
        assert run_with_status(JOB, lambda: time.sleep(0.35) or "done", interval=0.05) == "done"
    kinds = [k for k, _ in rec.events]
    assert kinds[0] == "started" and kinds[-1] == "ok" and kinds.count("tick") >= 3
    ticks = [t for k, t in rec.events if k == "tick"]
    assert ticks == sorted(ticks) and rec.events[-1][1] >= 0.35


def test_the_terminal_line_says_what_for_which_python_and_how_long() -> None:
    out = io.StringIO()
    term = Terminal(out, every=0.0)
    term.started(JOB)
    term.tick(JOB, 12.4)
    term.finished(JOB, 13.0, ok=True)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("envdoctor: uv: resolving 4 requirements (transformers==4.46.3, trl==0.12.2, peft, ...) "
                        "for Python 3.11 on linux x86_64 ...")
    assert lines[1].endswith("... 12 s") and lines[2] == "envdoctor: uv: resolved in 13.0 s"


def test_a_job_defaults_to_this_interpreter() -> None:
    job = resolving("pip", ["alpha==1.0"], None, None)
    assert job.python.count(".") == 1 and job.platform and job.describe().startswith("pip: resolving 1 requirement (")
