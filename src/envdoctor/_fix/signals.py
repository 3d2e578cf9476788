"""SIGTERM and SIGHUP mean what Ctrl-C means to a fix: stop the installer, roll back, exit non-zero.

`timeout`, CI cancellation and `docker stop` send SIGTERM; a closed terminal or SSH session sends SIGHUP.
Python's default for both is to die on the spot, which leaves the installer running and the environment
half-changed. While a fix applies, both raise `Interrupted` (a KeyboardInterrupt, so every `except
KeyboardInterrupt` path treats them alike); while it rolls back, all three are ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_CAUGHT = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


class Interrupted(KeyboardInterrupt):
    """A fix was told to stop by a signal; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def describe(exc: BaseException) -> str:
    """How an interrupt reads in a failure reason."""
    if isinstance(exc, Interrupted):
        return f"interrupted by {exc.name} before the fix finished"
    return "interrupted (Ctrl-C or a kernel interrupt) before the fix finished"


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Interrupted inside the block (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in _CAUGHT}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP are ignored while the snapshot is restored: a rollback cut short is the worst state."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, *_CAUGHT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
