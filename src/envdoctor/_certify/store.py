"""Certificates on disk: where they live, signing and verifying them, and judging one against this environment.

Stdlib only (no packaging, pydantic, rich or torch): `guard()` runs all of this on every start of a training
script. A certificate is JSON signed with HMAC-SHA256 under a random key kept beside the certificates
(`.key`, mode 0600), so an edited certificate, or one copied from another machine, no longer verifies.
The key is only as private as the cache folder: this catches hand edits and copies, not a user who
deliberately re-signs with their own key.
"""

from __future__ import annotations

import os
import sys

from .. import _fastpath
from . import fingerprint as fp
from ._record import Record, compare_digest, hmac_sha256, json_loads, sha256
from .gpuid import GpuIdentity

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: this runs in the guard
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Mapping
    from typing import Any

CERT_SCHEMA_VERSION = 1
KEY_FILE = ".key"


# ---------------------------------------------------------------- where things are

def cache_dir() -> str:
    """envdoctor's cache folder (`_paths.cache_dir()` as a str, without importing pathlib or platformdirs)."""
    return _fastpath.cache_folder()


def resolve(ref: str) -> str:
    """The matrix file of a reference: the fast path's lookup, else the loader (which raises MatrixError)."""
    light = _fastpath.resolve_light(ref)
    if light is not None:
        return light
    from .._matrix.loader import resolve_ref

    return str(resolve_ref(ref))


def file_sha256(path: str) -> str | None:
    """The SHA-256 of a file's bytes as hex, or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return sha256(f.read()).hexdigest()
    except OSError:
        return None


def cert_dir() -> str:
    """The folder that holds every certificate."""
    return os.path.join(cache_dir(), "certificates")


def _short(text: str) -> str:
    return sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def cert_path(matrix_file: str, prefix: str | None = None) -> str:
    """The certificate of one environment (by sys.prefix) for one matrix file."""
    env = prefix if prefix is not None else sys.prefix
    matrix_file = os.path.realpath(matrix_file)
    stem = os.path.basename(os.path.dirname(matrix_file)) + "-" + os.path.splitext(os.path.basename(matrix_file))[0]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)[:60]
    return os.path.join(cert_dir(), f"{safe}-{_short(env)}-{_short(matrix_file)}.json")


# ---------------------------------------------------------------- signing

def _key(create: bool) -> bytes | None:
    path = os.path.join(cert_dir(), KEY_FILE)
    try:
        with open(path, "rb") as f:
            key = f.read()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    if not create:
        return None
    os.makedirs(cert_dir(), exist_ok=True)
    key = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        with open(path, "rb") as f:
            return f.read()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


_BLANK = "0" * 64


def verify(raw: bytes, data: Mapping[str, Any]) -> bool:
    """Whether a certificate file's signature matches its bytes under this machine's key.

    The signature is the HMAC of the file's exact bytes with the signature's own value blanked to zeros,
    so checking it needs no re-serialisation (that alone cost a millisecond for a 200-package environment).
    """
    sig = data.get("signature")
    key = _key(create=False)
    if not isinstance(sig, str) or len(sig) != 64 or key is None:
        return False
    blanked = raw.replace(f'"signature": "{sig}"'.encode(), f'"signature": "{_BLANK}"'.encode(), 1)
    return blanked != raw and compare_digest(sig, hmac_sha256(key, blanked))


def write(body: Mapping[str, Any], path: str) -> str:
    """Sign and write a certificate atomically; returns its path."""
    data = {k: v for k, v in body.items() if k != "signature"}
    data["signature"] = _BLANK
    import json  # writing is certify's job, not the guard's

    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=True)
    key = _key(create=True)
    assert key is not None
    sig = hmac_sha256(key, text.encode())
    text = text.replace(f'"signature": "{_BLANK}"', f'"signature": "{sig}"', 1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- judging a certificate

class Certificate(Record):
    """A certificate read from disk (only its signature is checked here; `judge` says whether it still holds)."""

    __slots__ = _fields = ("path", "matrix", "tier", "device", "created", "certified", "fingerprint", "gpu",
                           "probes", "data")

    path: str
    matrix: str
    tier: int
    device: str
    created: str
    certified: bool
    fingerprint: str
    gpu: Mapping[str, Any] | None
    probes: tuple[Mapping[str, Any], ...]
    data: Mapping[str, Any]

    @classmethod
    def from_data(cls, path: str, data: Mapping[str, Any]) -> Certificate:
        m = data.get("matrix") or {}
        env = data.get("environment") or {}
        return cls(path, str(m.get("ref", "")), int(data.get("tier", -1)), str(data.get("device", "")),
                   str(data.get("created", "")), bool(data.get("certified")), str(env.get("fingerprint", "")),
                   data.get("gpu"), tuple(data.get("probes") or ()), data)


class CertificateStatus(Record):
    """Whether a valid certificate exists for a matrix in an environment, and why (not)."""

    __slots__ = _fields = ("valid", "reason", "path", "tier", "created", "matrix", "device", "certificate")
    _defaults = dict.fromkeys(_fields[2:])

    valid: bool
    reason: str
    path: str | None
    tier: int | None
    created: str | None
    matrix: str | None
    device: str | None
    certificate: Certificate | None


class Here(Record):
    """The environment a certificate is judged against: this interpreter unless check() inspected another."""

    __slots__ = _fields = ("paths", "prefix", "python", "gpu")

    paths: tuple[str, ...]
    prefix: str
    python: str
    gpu: Callable[[], GpuIdentity]


def here() -> Here:
    from .gpuid import current

    return Here(tuple(sys.path), sys.prefix, fp.python_id(), current)


def read(path: str) -> tuple[Certificate | None, str]:
    """A certificate and '' when it verifies, else None and why not."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = json_loads(raw.decode("utf-8"))
    except FileNotFoundError:
        return None, "no certificate"
    except (OSError, ValueError) as e:
        return None, f"unreadable certificate {path}: {e}"
    if not isinstance(data, dict) or data.get("schema_version") != CERT_SCHEMA_VERSION:
        return None, f"certificate {path} has an unknown format"
    if not verify(raw, data):
        return None, f"certificate {path} does not verify: it was edited, or copied from another machine"
    return Certificate.from_data(path, data), ""


def _changed_dists(recorded: Mapping[str, str], paths: tuple[str, ...]) -> str:
    now = fp.distribution_tokens(paths)
    added = sorted(os.path.basename(p) for p in now.keys() - recorded.keys())
    removed = sorted(os.path.basename(p) for p in recorded.keys() - now.keys())
    changed = sorted(os.path.basename(p) for p in now.keys() & recorded.keys() if now[p] != recorded[p])
    parts = [f"{label} {', '.join(names[:4])}{' …' if len(names) > 4 else ''}"
             for label, names in (("installed", added), ("removed", removed), ("reinstalled", changed)) if names]
    return "; ".join(parts)


def judge(cert: Certificate, tier: int, device: str | None, env: Here) -> str:
    """'' when the certificate holds for this environment at this tier and device, else the reason it does not."""
    if not cert.certified:
        # the values of registry.ProbeStatus as the certificate records them (the enum would cost the guard an import)
        failed = [p for p in cert.probes if p.get("status") not in ("pass", "skipped")]
        what = "; ".join(f"{p.get('name')}: {p.get('status')} ({p.get('reason')})" for p in failed[:3])
        return f"the last certification ({cert.created}) did not pass: {what or 'see the certificate'}"
    for f in (cert.data.get("matrix") or {}).get("files") or ():
        if file_sha256(str(f.get("path"))) != f.get("sha256"):
            return f"the matrix file {f.get('path')} changed since certification"
    if cert.tier < tier:
        return f"certified up to tier {cert.tier}, but tier {tier} was asked for"
    env_rec = cert.data.get("environment") or {}
    quick = (env_rec.get("prefix") == env.prefix and env_rec.get("python") == env.python
             and isinstance(env_rec.get("dirs"), dict) and fp.same_dirs(env_rec["dirs"], env.paths))
    if not quick and cert.fingerprint != fp.fingerprint(env.paths, env.prefix, env.python):
        if env_rec.get("python") != env.python:
            return f"the certificate is for Python {env_rec.get('python')}, this is {env.python}"
        diff = _changed_dists(env_rec.get("tokens") or {}, env.paths)
        return f"the environment changed since certification ({diff or 'its package set differs'})"
    needs_gpu = cert.device == "cuda" or device is None or device == "cuda"
    ident = env.gpu() if needs_gpu else None
    if ident is not None and ident.source == "declared":
        return f"the check is for a declared GPU ({', '.join(ident.names)}); a certificate holds for a real GPU only"
    want = device if device is not None else ("cuda" if ident is not None and ident.present else "cpu")
    if cert.device != want:
        return (f"the certificate is for --device {cert.device}, but this run is for {want}"
                + (f" (GPU: {', '.join(ident.names)})" if ident is not None and ident.present else ""))
    if cert.device == "cuda":
        gpu = cert.gpu or {}
        assert ident is not None
        if not ident.present:
            return f"the certificate is for {gpu.get('name')} ({gpu.get('uuid')}), but no GPU is visible ({ident.reason})"
        if gpu.get("uuid") not in ident.uuids:
            return f"the certificate is for {gpu.get('name')} {gpu.get('uuid')}, this machine has {', '.join(ident.names)} {', '.join(ident.uuids)}"
        if ident.driver_version and gpu.get("driver_version") and ident.driver_version != gpu.get("driver_version"):
            return f"the NVIDIA driver changed from {gpu.get('driver_version')} to {ident.driver_version} since certification"
    return ""


def status(matrix_file: str, tier: int = 0, device: str | None = None, env: Here | None = None) -> CertificateStatus:
    """Look up and judge the certificate for a matrix file in an environment (this one by default)."""
    env = env if env is not None else here()
    path = cert_path(matrix_file, env.prefix)
    cert, why = read(path)
    if cert is None:
        return CertificateStatus(False, why if why != "no certificate" else f"no certificate for this environment ({path})",
                                 None if why == "no certificate" else path)
    reason = judge(cert, tier, device, env)
    common = dict(path=path, tier=cert.tier, created=cert.created, matrix=cert.matrix, device=cert.device,
                  certificate=cert)
    if reason:
        return CertificateStatus(False, reason, **common)  # type: ignore[arg-type]
    gpu = f" on {(cert.gpu or {}).get('name')}" if cert.device == "cuda" else " on CPU"
    return CertificateStatus(True, f"certified {cert.matrix} tier {cert.tier}{gpu} ({cert.created})", **common)  # type: ignore[arg-type]
