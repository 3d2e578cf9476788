"""Typed check results: a Finding per rule, a Report for one environment against one matrix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from .._env.environment import Runtime
from .._env.gpu import GpuInfo

REPORT_SCHEMA_VERSION = 1


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class Kind(str, Enum):
    """What a finding is about, in root-cause order: the report sorts by this."""

    MATRIX = "matrix"
    PYTHON = "python"
    PLATFORM = "platform"
    PACKAGE = "package"
    MISSING = "missing"
    ABSENT = "absent"
    KNOWN_BAD = "known-bad"
    CONSISTENCY = "consistency"
    GPU = "gpu"
    MODEL = "model"
    METADATA = "metadata"
    CERTIFICATE = "certificate"


_KIND_ORDER = {k: i for i, k in enumerate(Kind)}
_STATUS_ORDER = {Status.FAIL: 0, Status.WARN: 1, Status.SKIP: 2, Status.OK: 3}


@dataclass(frozen=True)
class Finding:
    """One rule applied to the environment. `message` is one line a person reads; the rest is for machines."""

    kind: Kind
    status: Status
    subject: str
    message: str
    reason: str = ""
    evidence: tuple[str, ...] = ()
    expected: str | None = None
    found: str | None = None
    fix: str | None = None

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return _KIND_ORDER[self.kind], _STATUS_ORDER[self.status], self.subject

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON holds it."""
        return {
            "kind": self.kind.value, "status": self.status.value, "subject": self.subject,
            "message": self.message, "expected": self.expected, "found": self.found,
            "reason": self.reason, "evidence": list(self.evidence), "fix": self.fix,
        }


@dataclass(frozen=True)
class CertificateSummary:
    """What a check shows of the certificate store: whether a valid certificate exists here, and why (not).

    The caller looks it up (`envdoctor._certify.certificate_status`) and passes it in: check never reads the
    store, so certify can run check without a cycle.
    """

    valid: bool
    reason: str
    readable: bool = True  # False: the store could not be read; the report says why, without a finding

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "reason": self.reason}


@dataclass(frozen=True)
class ModelSummary:
    """What `check --model` read from a config.json: its model types (nested ones after the first) and architectures."""

    model_types: tuple[str, ...]
    architectures: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"model_types": list(self.model_types), "architectures": list(self.architectures)}


@dataclass(frozen=True)
class Report:
    """Every finding of one check, ordered by root cause, with what was checked against what."""

    matrix: str
    matrix_status: str
    python: str
    executable: str
    gpu: GpuInfo
    runtime: Runtime
    tools: dict[str, str | None] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    certificate: CertificateSummary | None = None  # None: not looked up
    model: ModelSummary | None = None  # None: no --model
    command_ref: str = ""  # how a command line names the matrix again: `matrix`, or the file the user gave

    @property
    def ok(self) -> bool:
        return not any(f.status is Status.FAIL for f in self.findings)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status in (Status.FAIL, Status.WARN))

    def count(self, status: Status) -> int:
        return sum(1 for f in self.findings if f.status is status)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON holds it (`envdoctor check --format json`), with its schema version."""
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "ok": self.ok,
            "matrix": self.matrix,
            "matrix_status": self.matrix_status,
            "matrix_ref": self.command_ref or self.matrix,
            "environment": {"python": self.python, "executable": self.executable, "runtime": asdict(self.runtime),
                            "tools": self.tools},
            "gpu": self.gpu.to_dict(),
            "certificate": self.certificate.to_dict() if self.certificate is not None else {},
            "model": self.model.to_dict() if self.model is not None else {},
            "summary": {s.value: self.count(s) for s in Status},
            "findings": [f.to_dict() for f in self.findings],
        }
