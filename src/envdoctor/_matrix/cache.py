"""The compiled-matrix cache: signed entries under keyed names, read on the warm path without pydantic.

An entry is what `validate.compile_chain` built from one extends chain, kept so that `check` need not validate
again. It is state that envdoctor reads back, so it is data to verify, never to trust (issue 15, finding 4: a
planted entry made `check` report OK and put a planted index into the fix plan):

- a per-user key (`matrices/key`, 32 random bytes, 0600) signs each entry with HMAC-SHA256 over the chain's
  cache key and the entry's bytes, and names it (so names are not predictable either); an entry that does not
  verify, or any entry when the key is missing or unsafe, is rebuilt from the matrix files;
- a verified entry is still rebuilt through `Matrix.from_dict`, which refuses keys it does not know;
- reads open the folder without following a symlink and take only regular files and folders of this user that
  nobody else can write; writes go through `_paths.private_write` (0700 folders, 0600 files, a planted symlink
  replaced, never followed). A cache that cannot be used or written only costs speed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

from .._paths import cache_dir, private_dir, private_write
from .._version import __version__
from ..errors import MatrixError, StateError
from .model import Matrix
from .record import shape

Chain = list[tuple[Path, bytes, dict[str, Any]]]

FOLDER = "matrices"
KEY_FILE = "key"
KEY_BYTES = 32
MAX_ENTRY = 1 << 24  # 16 MiB: the largest bundled matrix compiles to ~100 KiB
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_AT = os.open in os.supports_dir_fd and bool(_NOFOLLOW and _DIRECTORY)  # POSIX: open relative to a checked folder


def cache_key(chain: Chain) -> str:
    """The compiled matrix's cache key: the files' paths and bytes, the package version and the compiled format
    (FORMAT_VERSION and every matrix class's fields), so that an upgrade or a code change never loads a stale entry."""
    digest = hashlib.sha256(f"{__version__}\0{shape()}\0".encode())
    for p, raw, _ in chain:
        digest.update(str(p).encode() + b"\0" + raw + b"\0")
    return digest.hexdigest()[:32]


def folder() -> Path:
    """The cache's folder."""
    return cache_dir() / FOLDER


def entry_name(key: bytes, ckey: str) -> str:
    """The file name of the entry for a cache key: keyed, so that nobody without the key can predict it."""
    return hmac.new(key, b"name\0" + ckey.encode(), hashlib.sha256).hexdigest()[:40] + ".json"


def sign(key: bytes, ckey: str, body: bytes) -> bytes:
    """An entry's bytes: the HMAC of (cache key, body) in hex, a newline, the body."""
    mac = hmac.new(key, b"entry\0" + ckey.encode() + b"\0" + body, hashlib.sha256).hexdigest().encode()
    return mac + b"\n" + body


def _ours(st: os.stat_result, *, private: bool) -> bool:
    """A file or folder of this user that nobody else can write (or, `private`, read)."""
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return False
    return os.name != "posix" or not st.st_mode & (0o077 if private else 0o022)


class _Folder:
    """The cache folder, opened once without following a symlink; files are read relative to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        if _AT:
            fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
            st = os.fstat(fd)
        else:  # pragma: no cover - no openat: check the folder by its path
            fd, st = None, os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(path)
        self.fd = fd
        if not _ours(st, private=False):
            self.close()
            raise PermissionError(f"{path} is not a folder of this user alone")

    def read(self, name: str, limit: int) -> bytes:
        """A regular file of this user, 0600, at most `limit` bytes; OSError (ELOOP for a symlink) otherwise."""
        flags = os.O_RDONLY | _NOFOLLOW | _CLOEXEC
        fd = os.open(name, flags, dir_fd=self.fd) if self.fd is not None else os.open(self.path / name, flags)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or not _ours(st, private=True):
                raise PermissionError(f"{self.path / name} is not a private file of this user")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"{self.path / name} is larger than {limit} bytes")
        return data

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _key(where: _Folder) -> bytes | None:
    try:
        key = where.read(KEY_FILE, KEY_BYTES)
    except (OSError, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None


def load(chain: Chain) -> Matrix | None:
    """The cached compiled matrix of `chain`, or None when there is no entry that verifies and loads."""
    try:
        where = _Folder(folder())
    except OSError:
        return None  # missing, a symlink, or not ours alone: nothing in it is trusted
    try:
        key = _key(where)
        if key is None:
            return None
        ckey = cache_key(chain)
        raw = where.read(entry_name(key, ckey), MAX_ENTRY)
        body = raw.partition(b"\n")[2]
        if not hmac.compare_digest(raw, sign(key, ckey, body)):
            return None
        matrix = Matrix.from_dict(json.loads(body))
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError, MatrixError):
        return None  # rebuilt (and rewritten) by the caller
    finally:
        where.close()
    return matrix if matrix.source == str(chain[-1][0]) else None


def _new_key(path: str) -> bytes:
    """Create the key file, or take the one another process created first; replace an unsafe one."""
    key = os.urandom(KEY_BYTES)
    tmp = private_write(f"{path}.{os.getpid()}.{os.urandom(4).hex()}.new", key)
    try:
        try:
            os.link(tmp, path, follow_symlinks=False)  # fails if a key (or anything) is there already
        except FileExistsError:
            where = _Folder(Path(path).parent)
            try:
                theirs = _key(where)
            finally:
                where.close()
            if theirs is not None:
                return theirs
            os.replace(tmp, path)  # an unsafe or short key file (or a link planted at its name): replaced
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return key


def store(chain: Chain, matrix: Matrix) -> None:
    """Keep the compiled `matrix` of `chain`, signed; a cache that cannot be written safely only costs speed."""
    try:
        path = private_dir(folder())  # 0700, every folder from the cache root down checked: no symlinks
        where = _Folder(Path(path))
        try:
            key = _key(where)
        finally:
            where.close()
        if key is None:
            key = _new_key(os.path.join(path, KEY_FILE))
        ckey = cache_key(chain)
        body = json.dumps(matrix.to_dict(), sort_keys=True).encode()
        private_write(os.path.join(path, entry_name(key, ckey)), sign(key, ckey, body))
    except (OSError, StateError):
        pass  # a read-only or unsafe cache folder: the matrix is validated again next time
