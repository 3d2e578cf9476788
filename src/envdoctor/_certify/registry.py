"""The one probe registry: built-in probes and third-party ones (`register_probe`, or the `envdoctor.probes` entry points).

A probe is a function `probe(ctx: ProbeContext) -> Outcome`, importable by module and name, because it runs
in a fresh subprocess of the interpreter being certified. Stdlib only: importing this costs nothing heavy.

Third parties either decorate a function in an importable module with `@register_probe(...)`, or declare an
entry point in the group `envdoctor.probes` whose target is such a module or function; a matrix then names
the probe in `[[probes]]`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

ENTRY_POINT_GROUP = "envdoctor.probes"
GpuNeed = Literal["required", "optional", "no"]


class ProbeStatus(str, Enum):
    """A probe's verdict; its value is what the certificate records ("pass", ...)."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"

    def __str__(self) -> str:  # f-strings and str() give the value on every Python, as before the enum
        return self.value

    @property
    def ok(self) -> bool:
        """Whether the probe lets a certificate be written (passed, or skipped because it does not apply)."""
        return self in (ProbeStatus.PASS, ProbeStatus.SKIPPED)


PASS, FAIL, INCONCLUSIVE, SKIPPED = ProbeStatus.PASS, ProbeStatus.FAIL, ProbeStatus.INCONCLUSIVE, ProbeStatus.SKIPPED


class _Verdict:
    """`Outcome.passed(reason, **details)` and its siblings: the constructor of one status."""

    def __init__(self, status: ProbeStatus) -> None:
        self.status = status

    def __get__(self, obj: object, owner: type[Outcome]) -> Callable[..., Outcome]:
        def make(reason: str, **details: Any) -> Outcome:
            return owner(self.status, reason, details)

        return make


@dataclass(frozen=True)
class Outcome:
    """What a probe found: pass / fail / inconclusive / skipped, with a one-line reason and JSON-able details."""

    status: ProbeStatus
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:  # a plugin may still pass the plain string: "pass" becomes ProbeStatus.PASS
        object.__setattr__(self, "status", ProbeStatus(self.status))

    # Outcome.passed(reason, **details), .failed, .inconclusive, .skipped: an Outcome of that status
    passed, failed, inconclusive, skipped = _Verdict(PASS), _Verdict(FAIL), _Verdict(INCONCLUSIVE), _Verdict(SKIPPED)


@dataclass(frozen=True)
class ProbeContext:
    """What a probe gets in its subprocess: the device, the matrix's params for it, and facts of the matrix and GPU."""

    device: str  # "cuda" | "cpu"
    params: Mapping[str, Any]
    matrix: Mapping[str, Any]  # name, version, packages {name: specifier}, bf16 rule
    gpu: Mapping[str, Any]  # GpuInfo.to_dict() of the detected GPU
    workdir: str  # an empty temporary folder the probe may write to


@dataclass(frozen=True)
class ProbeSpec:
    """A registered probe: its name, default tier, where its function lives, and what it needs."""

    name: str
    tier: int
    target: str  # "module:function", imported in the subprocess
    gpu: GpuNeed = "no"  # required: skipped without a GPU; optional: runs on CPU when the matrix allows it
    timeout: float = 180.0
    description: str = ""
    params: Any = None  # the pydantic model of its params (a ProbeParams subclass); None takes only allow_cpu


_REGISTRY: dict[str, ProbeSpec] = {}
_loaded = False
load_errors: list[str] = []


def register_probe(
    name: str, tier: int, *, gpu: GpuNeed = "no", timeout: float = 180.0, description: str = "", replace: bool = False,
    params: Any = None,
) -> Callable[[Callable[[ProbeContext], Outcome]], Callable[[ProbeContext], Outcome]]:
    """Decorator: register a probe function under `name` (a matrix's `[[probes]] name`).

    `params` is the pydantic model of the params a matrix may pass (a subclass of
    `envdoctor._certify.params.ProbeParams`, `extra="forbid"`); without one the probe takes `allow_cpu` only.
    `certify` validates a matrix's params against it before any probe runs.
    """
    if not 0 <= tier <= 3:
        raise ValueError(f"probe {name!r}: tier must be 0 to 3, got {tier}")
    if gpu not in ("required", "optional", "no"):
        raise ValueError(f"probe {name!r}: gpu must be 'required', 'optional' or 'no', got {gpu!r}")

    def deco(fn: Callable[[ProbeContext], Outcome]) -> Callable[[ProbeContext], Outcome]:
        if not fn.__module__.startswith(__package__ + ".probes"):
            _load()  # built-ins first, so that a plugin's replace=True really replaces them
        if "<locals>" in fn.__qualname__ or fn.__module__ == "__main__":
            raise ValueError(f"probe {name!r}: {fn.__qualname__} must be a top-level function of an importable "
                             "module, because it runs in a subprocess")
        doc = (fn.__doc__ or "").strip().splitlines()
        spec = ProbeSpec(name, tier, f"{fn.__module__}:{fn.__qualname__}", gpu, timeout,
                         description or (doc[0] if doc else ""), params)
        old = _REGISTRY.get(name)
        if old is not None and old.target != spec.target and not replace:
            raise ValueError(f"probe {name!r} is already registered by {old.target}; pass replace=True to override it")
        _REGISTRY[name] = spec
        return fn

    return deco


def _load() -> None:
    """Import the built-in probes and every `envdoctor.probes` entry point, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    from . import probes as _builtin  # noqa: F401  (registers the built-in probes)

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()  # importing the module runs its @register_probe decorators
        except Exception as e:  # a broken plugin is reported, never fatal
            load_errors.append(f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP}): {type(e).__name__}: {e}")


def all_probes() -> dict[str, ProbeSpec]:
    """Every registered probe by name (built-in and third-party)."""
    _load()
    return dict(_REGISTRY)


def get(name: str) -> ProbeSpec | None:
    """The probe registered under `name`, or None."""
    _load()
    return _REGISTRY.get(name)
