"""Certificates on disk: where they live, signing and verifying them, and judging one against this environment.

Stdlib only (no packaging, pydantic, rich or torch): `guard()` runs all of this on every start of a training
script. A certificate is JSON signed with HMAC-SHA256 under a random key kept beside the certificates
(`.key`, mode 0600), so an edited certificate, or one copied from another machine, no longer verifies.
The key is only as private as the cache folder: this catches hand edits and copies, not a user who
deliberately re-signs with their own key.
"""

from __future__ import annotations

import os
import stat
import sys

from .. import _fastpath
from . import fingerprint as fp
from ._record import Record, compare_digest, hmac_sha256, json_loads, sha256

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: this runs in the guard
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Mapping
    from typing import Any

    from .gpuid import GpuIdentity

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


def cert_path(matrix_file: str, prefix: str | None = None, tier: int = 0, device: str = "cpu") -> str:
    """The certificate of one environment (by sys.prefix) for one matrix file, at one tier on one device.

    One file per tier and device, so certificates of different tiers coexist: a later `certify --tier 0`
    never replaces a tier-3 certificate, and the guard asking for tier 2 accepts the tier-3 one.
    """
    env = prefix if prefix is not None else sys.prefix
    matrix_file = os.path.realpath(matrix_file)
    stem = os.path.basename(os.path.dirname(matrix_file)) + "-" + os.path.splitext(os.path.basename(matrix_file))[0]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)[:60]
    dev = device if device in ("cuda", "cpu") else "cpu"
    return os.path.join(cert_dir(), f"{safe}-{_short(env)}-{_short(matrix_file)}-{dev}-t{int(tier)}.json")


# ---------------------------------------------------------------- signing

KEY_BYTES = 32


def key_path() -> str:
    """The signing key of this machine's certificates."""
    return os.path.join(cert_dir(), KEY_FILE)


def _read_key(path: str) -> tuple[bytes | None, str]:
    """The key and '', or None and why it cannot sign ('' when there is none yet). Never through a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, ""
    except OSError as e:  # ELOOP: a symlink planted at the key's name would let its target sign
        return None, f"cannot be read ({e.strerror or e}; a symbolic link is refused)"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        key = f.read(4096)
    if not stat.S_ISREG(st.st_mode):
        return None, "is not a regular file"
    if len(key) != KEY_BYTES:
        return None, f"is {len(key)} bytes, not the {KEY_BYTES} random bytes envdoctor writes"
    if os.name == "posix" and st.st_mode & 0o077:
        return None, f"is readable or writable by other users (mode {st.st_mode & 0o777:o}, need 600)"
    return key, ""


def key_problem() -> str:
    """Why the key on disk cannot sign or verify ('' when it can, or when there is none yet)."""
    path = key_path()
    _, why = _read_key(path)
    return f"the certificate key {path} {why}: remove it and run envdoctor certify again" if why else ""


def signing_key() -> bytes:
    """The key to sign with, created on first use (32 random bytes, 0600); StateError when the file is unusable."""
    path = key_path()
    key, why = _read_key(path)
    if key is not None:
        return key
    from .._paths import private_dir  # certify's job, not the guard's
    from ..errors import StateError

    if why:
        raise StateError(key_problem())
    private_dir(cert_dir())
    key = os.urandom(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:  # another process made it first: use theirs, if it is sound
        key, why = _read_key(path)
        if key is None:
            raise StateError(key_problem()) from None
        return key
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
    key, _ = _read_key(key_path())
    if not isinstance(sig, str) or len(sig) != 64 or key is None:
        return False
    blanked = raw.replace(f'"signature": "{sig}"'.encode(), f'"signature": "{_BLANK}"'.encode(), 1)
    return blanked != raw and compare_digest(sig, hmac_sha256(key, blanked))


def write(body: Mapping[str, Any], path: str) -> str:
    """Sign and write a certificate atomically (0600 in a 0700 folder, never through a symlink); returns its path."""
    data = {k: v for k, v in body.items() if k != "signature"}
    data["signature"] = _BLANK
    import json  # writing is certify's job, not the guard's

    from .._paths import private_write

    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=True)
    sig = hmac_sha256(signing_key(), text.encode())
    text = text.replace(f'"signature": "{_BLANK}"', f'"signature": "{sig}"', 1)
    return private_write(path, text)


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


def _current_gpu() -> GpuIdentity:
    """This machine's GPU identity; a CPU certificate judged for --device cpu never asks, so the guard skips gpuid."""
    from .gpuid import current

    return current()


def here() -> Here:
    return Here(tuple(sys.path), sys.prefix, fp.python_id(), _current_gpu)


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
        return None, key_problem() or f"certificate {path} does not verify: it was edited, or copied from another machine"
    return Certificate.from_data(path, data), ""


def _changed_dists(recorded: Mapping[str, str], paths: tuple[str, ...]) -> str:
    now = fp.distribution_tokens(paths)
    added = sorted(os.path.basename(p) for p in now.keys() - recorded.keys())
    removed = sorted(os.path.basename(p) for p in recorded.keys() - now.keys())
    changed = sorted(os.path.basename(p) for p in now.keys() & recorded.keys() if now[p] != recorded[p])
    parts = [f"{label} {', '.join(names[:4])}{' …' if len(names) > 4 else ''}"
             for label, names in (("installed", added), ("removed", removed), ("reinstalled", changed)) if names]
    return "; ".join(parts)


def _shadowed(recorded: Any, dirs: Any, paths: tuple[str, ...]) -> str:
    """Why an import of a checked package resolves elsewhere than at certification ('' when none does).

    Only path entries that are new or changed since certification (their folder token, as `same_dirs` reads
    it) can hold a new shadow, so only those are listed; the whole path is resolved again only when one of
    them holds a checked name. Usually that is one listdir: of the script's folder, sys.path[0].
    """
    if not isinstance(recorded, dict) or not recorded:
        return ""
    known = dirs if isinstance(dirs, dict) else {}
    changed = [e for e in dict.fromkeys(paths) if (known.get(e) or ("",))[0] != fp.dir_token(e)]
    if not changed or not any(_fastpath.module_origins(recorded, changed).values()):
        return ""
    now = _fastpath.module_origins(recorded, paths)
    for name, was in recorded.items():
        if now.get(name) != was:
            return (f"`import {name}` now finds {now.get(name) or 'nothing'}, not {was or 'nothing'} as certified "
                    "(a PYTHONPATH entry or a planted file shadows it)")
    return ""


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
    shadow = _shadowed(env_rec.get("imports"), env_rec.get("dirs"), env.paths)
    if shadow:
        return shadow
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


def status(matrix_file: str, tier: int = 0, device: str | None = None, env: Here | None = None,
           deep: bool = False) -> CertificateStatus:
    """Look up and judge the certificates for a matrix file in an environment (this one by default).

    The certificates of `tier` and above on the device (the one asked for, else the detected one) are judged
    in that order; the first that holds wins. `deep` also checks the certified distributions' files against
    their RECORD hashes (seconds, not milliseconds: `guard(deep=True)`, `certify --status --verify-files`).
    """
    env = env if env is not None else here()
    want = device if device is not None else ("cuda" if env.gpu().present else "cpu")
    first: tuple[str, str | None, Certificate | None] | None = None
    for t in range(max(tier, 0), 4):
        path = cert_path(matrix_file, env.prefix, t, want)
        cert, why = read(path)
        if cert is None:
            if why != "no certificate" and first is None:
                first = (why, path, None)
            continue
        reason = judge(cert, tier, device, env)
        if not reason and deep:
            from .verify import changed_files  # hashing files: never on the fast path

            reason = changed_files(cert)
        if not reason:
            gpu = f" on {(cert.gpu or {}).get('name')}" if cert.device == "cuda" else " on CPU"
            return CertificateStatus(True, f"certified {cert.matrix} tier {cert.tier}{gpu} ({cert.created})",
                                     **_common(path, cert))
        if first is None:
            first = (reason, path, cert)
    if first is None:
        return _none_for(matrix_file, tier, device, want, env)
    why, where, found = first
    return CertificateStatus(False, why, **(_common(where, found) if found is not None else {"path": where}))


def _common(path: str | None, cert: Certificate) -> dict[str, Any]:
    return dict(path=path, tier=cert.tier, created=cert.created, matrix=cert.matrix, device=cert.device,
                certificate=cert)


def _none_for(matrix_file: str, tier: int, device: str | None, want: str, env: Here) -> CertificateStatus:
    """No certificate at this tier or above on this device: say so, naming one for the other device if any."""
    other = "cpu" if want == "cuda" else "cuda"
    for t in range(max(tier, 0), 4):
        path = cert_path(matrix_file, env.prefix, t, other)
        cert, _ = read(path)
        if cert is not None:
            reason = judge(cert, tier, device, env) or f"the certificate is for --device {other}, this run is for {want}"
            return CertificateStatus(False, reason, **_common(path, cert))
    here_path = cert_path(matrix_file, env.prefix, tier, want)
    return CertificateStatus(False, f"no certificate for this environment at tier {tier} or above on {want} "
                                    f"({here_path})")
