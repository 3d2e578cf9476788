"""The pre-flight guard: `envdoctor.guard(matrix=..., tier=...)` at the top of a training script.

With a valid certificate for this environment, matrix and GPU it returns the certificate within a few
milliseconds, importing only the standard library (no torch, transformers, pydantic or rich). Otherwise it
runs the check (and the probes when `certify=True`) and raises NotCertifiedError carrying the report (or the
certification) and the commands that fix it; `exit=True` prints them through the renderer and exits with 1.

Decorator form: `@envdoctor.guard.required(matrix="llama31", tier=2)` on the training entry function runs the
guard before the first call (once per process).

`ENVDOCTOR_SKIP_GUARD=1` skips the guard (any value but empty, 0, false, no or off): it writes one line to
stderr (whatever the warning filters say), warns (GuardSkippedWarning, for code that catches it) and appends
a line to `<cache>/guard-skips.log`, so a skipped run is never silent.

`deep=True` also checks the certified packages' files against their RECORD hashes (an in-place edit):
seconds instead of milliseconds.

Only the standard library's cheapest modules load here: no typing, functools or contextlib (each costs
the fast path milliseconds on a slow CI machine), hence the TYPE_CHECKING idiom below.
"""

from __future__ import annotations

import os
import sys
import time

from ..errors import NotCertifiedError
from . import store

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

SKIP_ENV = "ENVDOCTOR_SKIP_GUARD"
_NOT_SET = ("", "0", "false", "no", "off")
TIERS = (0, 1, 2, 3)


class GuardSkippedWarning(UserWarning):
    """The guard was skipped through ENVDOCTOR_SKIP_GUARD."""


def skip_requested() -> bool:
    """Whether ENVDOCTOR_SKIP_GUARD asks to skip the guard ('1', 'yes', ...; not '', '0', 'false', 'no', 'off')."""
    return os.environ.get(SKIP_ENV, "").strip().lower() not in _NOT_SET


def _record_skip(matrix: str, tier: int, stacklevel: int) -> None:
    import warnings

    value = os.environ.get(SKIP_ENV, "")
    msg = f"envdoctor guard skipped for matrix {matrix!r} tier {tier} because {SKIP_ENV}={value!r}"
    try:  # always, even under `-W ignore` or a filter that silences the warning below (issue 15)
        sys.stderr.write(f"envdoctor: warning: {msg}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # no stderr (pythonw), or a closed one
        pass
    warnings.warn(msg, GuardSkippedWarning, stacklevel=stacklevel)
    try:
        from .._paths import private_append
        from ..errors import StateError

        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\t{sys.prefix}\t{matrix}\ttier {tier}\t{' '.join(sys.argv)}\n"
        private_append(os.path.join(store.cache_dir(), "guard-skips.log"), line)
    except (OSError, StateError):
        pass  # the line on stderr still says it


def fix_commands(ref: str, tier: int, device: str | None, fixable: bool) -> tuple[tuple[str, ...], ...]:
    """The commands that make this environment certified, as argument lists (`envdoctor fix` only when it can help)."""
    certify = ("envdoctor", "certify", "--matrix", ref, "--tier", str(tier)) + (("--device", device) if device else ())
    return ((("envdoctor", "fix", "--matrix", ref),) if fixable else ()) + (certify,)


def _interrupted(matrix: str, tier: int, status: store.CertificateStatus) -> NotCertifiedError | None:
    """A killed fix's journal in this environment: not certified, whatever the certificate says (issue 14).

    The fast path pays the few stats of `journal_may_exist`; the fix machinery loads only when a journal is there.
    """
    from .._fastpath import journal_may_exist

    if not journal_may_exist(sys.executable):
        return None
    from .._fix.recover import interrupted_notice

    notice = interrupted_notice(sys.executable)
    if notice is None:
        return None
    half = store.CertificateStatus(False, notice, status.path, status.tier, status.created, status.matrix,
                                   status.device, None)
    repair = (("envdoctor", "fix", "--rollback", "--python", sys.executable),
              ("envdoctor", "fix", "--resume", "--python", sys.executable))
    return NotCertifiedError(matrix, tier, half, commands=repair)


def _slow(matrix: str, tier: int, device: str | None, status: store.CertificateStatus, certify: bool,
          timeout: float | None, deep: bool = False) -> Any:
    """No valid certificate: run the check (and the probes when asked); return a new certificate or raise."""
    if certify:
        from .certify import certify_environment

        result = certify_environment(matrix, tier=tier, device=device, timeout=timeout, verify_files=deep)
        if result.certified and result.certificate is not None:
            return result.certificate
        raise NotCertifiedError(matrix, tier, status, result=result,
                                commands=fix_commands(matrix, tier, device, result.check_ok is False))
    from .._check import check
    from .tier0 import fixable

    report = check(matrix)
    raise NotCertifiedError(matrix, tier, status, report=report,
                            commands=fix_commands(matrix, tier, device, fixable(report)))


def guard(
    matrix: str | os.PathLike[str] = "llama31",
    tier: int = 2,
    device: str | None = None,
    exit: bool = False,
    certify: bool = False,
    timeout: float | None = None,
    deep: bool = False,
    _stacklevel: int = 3,
) -> store.Certificate | None:
    """Make sure this environment is certified for `matrix` at `tier` on `device` (the detected one by default).

    `matrix` is any reference: a name, `name@version` or a path. Returns the certificate (None when skipped
    through ENVDOCTOR_SKIP_GUARD). Without a valid certificate it raises NotCertifiedError (the check report plus
    the commands to run); with `certify=True` it runs the probes first and returns the new certificate if they
    pass; with `exit=True` it prints the message to stderr and exits with status 1. `deep=True` also checks the
    certified packages' files against their RECORD hashes (in-place edits; seconds, not milliseconds).
    """
    ref = os.fspath(matrix)
    if device not in (None, "cuda", "cpu"):
        raise ValueError(f"guard(device={device!r}): use 'cuda', 'cpu' or None (the detected device)")
    if tier not in TIERS:
        raise ValueError(f"guard(tier={tier!r}): tiers are 0 (the check), 1 (imports), 2 (GPU smoke), "
                         "3 (tiny training run)")
    if skip_requested():
        _record_skip(ref, tier, _stacklevel)
        return None
    try:
        matrix_file = store.resolve(ref)
        status = store.status(matrix_file, tier=tier, device=device, deep=deep)
        half = _interrupted(ref, tier, status)
        if half is not None:
            raise half
        if status.valid:
            return status.certificate
        return _slow(ref, tier, device, status, certify, timeout, deep)
    except NotCertifiedError as e:
        if not exit:
            raise
        from .._render.certify import render_not_certified

        print(f"envdoctor: {render_not_certified(e)}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as e:
        from ..errors import EnvDoctorError

        if exit and isinstance(e, EnvDoctorError):  # e.g. an unknown matrix: one line, no traceback
            print(f"envdoctor: error: {e}", file=sys.stderr)
            raise SystemExit(e.exit_code) from None
        raise


def required(
    matrix: str | os.PathLike[str] = "llama31", tier: int = 2, device: str | None = None,
    exit: bool = False, certify: bool = False, deep: bool = False,
) -> Callable[[F], F]:
    """Decorator form of guard(): the wrapped function runs only in a certified environment (checked once per process)."""

    import functools  # only the decorator form pays for it

    if tier not in TIERS or device not in (None, "cuda", "cpu"):
        guard(matrix, tier=tier, device=device)  # raises the ValueError at decoration time, not at the first call

    def deco(fn: F) -> F:
        done: list[Any] = []

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not done:  # the skip warning points at the caller of the decorated function
                done.append(guard(matrix, tier=tier, device=device, exit=exit, certify=certify, deep=deep,
                                   _stacklevel=4))
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco


guard.required = required  # type: ignore[attr-defined]
