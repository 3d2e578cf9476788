"""`envdoctor lock`: an environment as a lock (PEP 751 pylock.toml or a hashed requirements file).

Facts (the dist-info folders) -> sources (what the installer recorded, else the configured index) -> Lock;
the renderers in `envdoctor._render.lock` write it. Nothing here installs anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from packaging.utils import NormalizedName
from packaging.version import Version

from .._env.environment import Environment, inspect_environment
from .._env.gpu import GpuInfo
from .._resolver.model import Sources
from .index import from_index
from .model import Artifact, CertificateInfo, Directory, Lock, Locked, Unlocked, Vcs
from .records import from_record

__all__ = ["Artifact", "CertificateInfo", "Directory", "Lock", "Locked", "Unlocked", "Vcs", "lock_environment"]

# What `pip freeze` leaves out unless --all: the installers a fresh venv brings with it.
INSTALLERS = frozenset({"pip", "setuptools", "wheel", "distribute"})


def certificate_info(matrix: str, env: Environment) -> CertificateInfo | None:
    """The valid certificate of `matrix` in `env`, or None; a store that cannot be read is no certificate."""
    from .._certify import certificate_status

    try:
        status = certificate_status(matrix, env)
    except Exception:  # a broken certificate store must never break the lock
        return None
    cert = status.certificate
    if not status.valid or cert is None:
        return None
    gpu = cert.gpu.get("name") if cert.gpu else None
    return CertificateInfo(cert.tier, cert.device, str(gpu) if gpu else None, cert.created)


def lock_environment(python: str | os.PathLike[str] | None = None, *, matrix: str | None = None,
                     sources: Sources | None = None, include_installers: bool = False,
                     certificate: Callable[[str, Environment], CertificateInfo | None] | None = certificate_info,
                     environment: Environment | None = None) -> Lock:
    """Lock an environment (this interpreter, or `python`): every distribution to one file with its hashes."""
    env = environment or inspect_environment(python, gpu=GpuInfo(False, reason="not needed for a lock"))
    target = None if python is None and environment is None else env.executable
    locked: list[Locked] = []
    unlocked: list[Unlocked] = []
    skipped: list[str] = []
    pins: dict[NormalizedName, tuple[str, Version]] = {}
    for key, dist in sorted(env.distributions.items()):
        if key in INSTALLERS and not include_installers:
            skipped.append(dist.name)
            continue
        if dist.version is None:
            unlocked.append(Unlocked(dist.name, dist.raw_version, "its version is not a valid version"))
            continue
        recorded = from_record(dist, dist.version)
        if isinstance(recorded, Locked):
            locked.append(recorded)
        elif isinstance(recorded, Unlocked):
            unlocked.append(recorded)
        else:
            pins[key] = (dist.name, dist.version)
    where = (".".join(map(str, env.python_version.release[:2])),
             f"{env.markers.get('sys_platform', '?')} {env.markers.get('platform_machine', '')}".strip())
    found, missing = from_index(target, pins, sources or Sources(), where=where)
    locked += found
    unlocked += missing
    return Lock(env.python_version, dict(env.markers), tuple(sorted(locked, key=lambda p: p.key)),
                tuple(sorted(unlocked, key=lambda u: u.name.lower())), matrix,
                certificate(matrix, env) if certificate and matrix else None, tuple(skipped))
