"""Live status of a long step (a resolution): an injected reporter that does nothing unless the CLI installs one.

The resolver says what it resolves, for which Python and platform, and the reporter hears elapsed seconds while
the tool runs; the CLI's Terminal reporter turns that into one updating line on stderr (a line every 15 s when
stderr is not a terminal), so a two-minute pip resolution no longer looks hung.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Resolving:
    """One resolution as the user should see it: the tool, what is asked, and for which Python and platform."""

    tool: str
    requirements: tuple[str, ...]
    python: str
    platform: str

    def describe(self) -> str:
        """'uv: resolving 6 requirements (transformers==4.46.3, trl==0.12.2, ...) for Python 3.11 on linux'."""
        shown = ", ".join(self.requirements[:3]) + (", ..." if len(self.requirements) > 3 else "")
        n = len(self.requirements)
        return f"{self.tool}: resolving {n} requirement{'s' if n != 1 else ''} ({shown}) for Python {self.python} on {self.platform}"


class Reporter(Protocol):
    """What a long step tells whoever listens."""

    def started(self, job: Resolving) -> None: ...
    def tick(self, job: Resolving, elapsed: float) -> None: ...
    def finished(self, job: Resolving, elapsed: float, ok: bool) -> None: ...


class Silent:
    """The default: library callers hear nothing."""

    def started(self, job: Resolving) -> None:
        """Nothing."""

    def tick(self, job: Resolving, elapsed: float) -> None:
        """Nothing."""

    def finished(self, job: Resolving, elapsed: float, ok: bool) -> None:
        """Nothing."""


class Terminal:
    """One line on a stream: rewritten in place on a terminal, else repeated every `every` seconds."""

    def __init__(self, stream: TextIO | None = None, every: float = 15.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every
        self._last = 0.0

    def _line(self, text: str, end: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + text + end)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def started(self, job: Resolving) -> None:
        """Say what starts."""
        self._last = 0.0
        self._line(f"envdoctor: {job.describe()} ...", "")

    def tick(self, job: Resolving, elapsed: float) -> None:
        """The elapsed seconds: every tick on a terminal, every `every` seconds in a log."""
        if self.tty or elapsed - self._last >= self.every:
            self._last = elapsed
            self._line(f"envdoctor: {job.describe()} ... {elapsed:.0f} s", "")

    def finished(self, job: Resolving, elapsed: float, ok: bool) -> None:
        """How it ended and how long it took."""
        self._line(f"envdoctor: {job.tool}: {'resolved' if ok else 'failed'} in {elapsed:.1f} s", "\n" if self.tty else "")


SILENT = Silent()
_current: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("envdoctor_status", default=None)


def current() -> Reporter:
    """The reporter of this context (Silent unless `reporting` installed one)."""
    return _current.get() or SILENT


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Install `reporter` for the code inside the block."""
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)


def resolving(tool: str, requirements: Sequence[str], python: str | None, platform: str | None) -> Resolving:
    """The job of a resolution; a missing Python or platform is this interpreter's."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Resolving(tool, tuple(requirements), python or here, platform or sys.platform)


def run_with_status(job: Resolving, fn: Callable[[], T], interval: float = 1.0,
                    ok: Callable[[T], bool] = lambda _: True) -> T:
    """Run `fn` while the current reporter hears `job` start, tick every `interval` seconds, and finish."""
    reporter = current()
    if isinstance(reporter, Silent):
        return fn()
    done = threading.Event()
    start = time.perf_counter()

    def ticker() -> None:
        while not done.wait(interval):
            reporter.tick(job, time.perf_counter() - start)

    reporter.started(job)
    thread = threading.Thread(target=ticker, name="envdoctor-status", daemon=True)
    thread.start()
    result: T | None = None
    try:
        result = fn()
        return result
    finally:
        done.set()
        thread.join()
        reporter.finished(job, time.perf_counter() - start, result is not None and ok(result))
