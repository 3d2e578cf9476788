"""The one error hierarchy of envdoctor: every failure the CLI reports is one of these."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the guard imports this module
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


class EnvDoctorError(Exception):
    """Base of every error envdoctor raises on purpose; the CLI prints its message on one line."""

    exit_code = 2


class MatrixError(EnvDoctorError):
    """A matrix cannot be found, parsed or validated. Holds every problem found, not only the first."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        self.problems = tuple(problems) or (message,)
        super().__init__(message if not problems else "\n".join(self.problems))


class InspectionError(EnvDoctorError):
    """The environment (another interpreter, the GPU) could not be inspected."""


class ResolutionError(EnvDoctorError):
    """The resolver says a target set cannot be installed together; the message names both sides."""

    exit_code = 1


class FixError(EnvDoctorError):
    """A fix step failed; the environment was restored (or the message says it could not be)."""

    exit_code = 1


class LockedError(FixError):
    """Another `envdoctor fix` holds the lock on this environment."""

    exit_code = 2


class RestartRequired(EnvDoctorError):
    """Packages this process already imported were changed on disk: restart the interpreter."""

    exit_code = 3


class NotCertifiedError(EnvDoctorError):
    """The environment has no valid certificate for this matrix and GPU; it carries the results, not their text.

    `status` is the certificate status that sent the guard down the slow path, `report` the check's Report
    (or None), `result` the CertifyResult when the guard certified (or None), `commands` the commands that fix
    it as argument lists. str() words them through `_render.certify.render_not_certified`.
    """

    exit_code = 1

    def __init__(self, matrix: str, tier: int, status: Any = None, report: Any = None, result: Any = None,
                 commands: tuple[tuple[str, ...], ...] = ()) -> None:
        super().__init__(matrix, tier, status, report, result, commands)  # args: what pickle passes back
        self.matrix, self.tier, self.status, self.report, self.result = matrix, tier, status, report, result
        self.commands = tuple(tuple(c) for c in commands)

    def __str__(self) -> str:
        from ._render.certify import render_not_certified  # the renderer words it; errors import nothing

        return render_not_certified(self)


class CompatError(EnvDoctorError, TypeError):
    """A keyword has no equivalent in the installed library version (raised by envdoctor.compat)."""

    exit_code = 1


class ConfigError(EnvDoctorError):
    """A trainer configuration file or flag is invalid."""


class DoesNotFitError(ConfigError):
    """No training plan fits the GPU (or the --max-memory-gib budget): a finding about the run, not a usage error."""

    exit_code = 1


class StateError(EnvDoctorError):
    """A folder or file envdoctor keeps state in (cache, certificates, their key) is unsafe or malformed.

    Unsafe: a symbolic link where envdoctor writes, or a folder of another user. Malformed: a certificate key
    that is too short to sign anything. The message names the path and says what to remove.
    """


class UsageError(EnvDoctorError):
    """The command line asks for something that cannot be done as asked."""
