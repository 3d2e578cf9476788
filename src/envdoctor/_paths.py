"""Where envdoctor keeps its caches, certificates and state, and where it finds matrices; overridable for tests and CI.

The rules themselves live in `_fastpath` (stdlib only, for the guard); this module gives them as `Path`s, and
holds the one way envdoctor writes state it reads back later (`private_write`, `private_append`): folders
0700, files 0600, never through a symbolic link, replaced atomically inside their folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import _fastpath
from .errors import StateError

StrPath = str | os.PathLike[str]
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; Windows has no symlink-following open to guard against
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def cache_dir() -> Path:
    """The user's cache directory for envdoctor (ENVDOCTOR_CACHE_DIR overrides it)."""
    return Path(_fastpath.cache_folder())


def user_matrix_dirs() -> list[Path]:
    """Extra folders searched for matrices by name: ENVDOCTOR_MATRIX_PATH (os.pathsep-separated)."""
    return [Path(p) for p in _fastpath.user_matrix_folders()]


def bundled_matrix_dir() -> Path:
    """The matrices shipped inside the wheel."""
    return Path(_fastpath.BUNDLED_MATRICES)


def atomic_write(path: Path, text: str) -> None:
    """Write a user's file (a fixed script, a notebook) so that a reader never sees half of it.

    For envdoctor's own state (caches, certificates, fix state) use `private_write` instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # the newlines as Path.write_text writes them; 0o666 less the umask, as open() creates a user's file
    _replace(str(path.parent), os.path.abspath(path), text.replace("\n", os.linesep).encode("utf-8"), 0o666)


def _check_folder(folder: str) -> None:
    """Refuse a symlink, a non-folder or another user's folder; tighten our own folder to 0700."""
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode):
        raise StateError(f"{folder} is a symbolic link; envdoctor keeps its state only in real folders: "
                         "remove the link (envdoctor recreates the folder)")
    if not stat.S_ISDIR(st.st_mode):
        raise StateError(f"{folder} is not a folder: remove it (envdoctor recreates it)")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise StateError(f"{folder} belongs to another user (uid {st.st_uid}); envdoctor keeps its state only in "
                         "folders of its own: remove it, or set ENVDOCTOR_CACHE_DIR")
    if os.name == "posix" and st.st_mode & 0o077:
        os.chmod(folder, 0o700, follow_symlinks=False)


def private_dir(path: StrPath, root: StrPath | None = None) -> str:
    """Create `path` as a 0700 folder (its missing parents too) and check every folder from `root` down to it.

    `root` defaults to envdoctor's cache folder when `path` is inside it (else `path` alone is checked): each
    of those must be a real folder of this user, never a symlink, so that a planted link cannot redirect a
    write. Raises StateError when one is not.
    """
    path = os.path.abspath(os.fspath(path))
    if root is None:
        cache = os.path.abspath(_fastpath.cache_folder())
        root = cache if path == cache or path.startswith(cache + os.sep) else path
    root = os.path.abspath(os.fspath(root))
    os.makedirs(os.path.dirname(root) or root, exist_ok=True)  # above the root: the user's business
    chain = [path]
    while chain[-1] != root and os.path.dirname(chain[-1]) != chain[-1]:
        chain.append(os.path.dirname(chain[-1]))
    for folder in reversed(chain):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise StateError(f"cannot create {folder}: {e.strerror or e}") from e
        _check_folder(folder)
    return path


def private_write(path: StrPath, data: str | bytes, root: StrPath | None = None) -> str:
    """Write envdoctor state to `path` atomically, as a 0600 file in a checked 0700 folder (see private_dir).

    The bytes go to a new temporary file in the same folder (O_EXCL | O_NOFOLLOW: never an existing file or a
    link), which then replaces `path`; a symlink planted at `path` is replaced, its target never written.
    """
    path = os.path.abspath(os.fspath(path))
    folder = private_dir(os.path.dirname(path), root)
    _replace(folder, path, data.encode("utf-8") if isinstance(data, str) else data, 0o600)
    return path


def _replace(folder: str, path: str, raw: bytes, mode: int) -> None:
    """Write `raw` to a new temporary file in `folder` (O_EXCL | O_NOFOLLOW: never an existing file or a link),
    then replace `path` with it: a reader sees the old bytes or the new, never half, and a link at `path` is
    replaced, its target never written."""
    for _ in range(3):
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - three random names taken
        raise StateError(f"cannot create a temporary file in {folder}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def private_append(path: StrPath, text: str, root: StrPath | None = None) -> None:
    """Append a line to an envdoctor log (0600, never through a symlink); StateError when `path` is not our file."""
    path = os.path.abspath(os.fspath(path))
    private_dir(os.path.dirname(path), root)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
    except OSError as e:  # ELOOP: a symlink was planted at the log's name
        raise StateError(f"cannot append to {path}: {e.strerror or e}; remove it") from e
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
            raise StateError(f"{path} is not a regular file of this user: remove it")
        f.write(text)


def read_private(path: StrPath, limit: int = 1 << 24) -> bytes:
    """Read envdoctor state without following a symlink at `path`; OSError (FileNotFoundError, ELOOP) as open gives."""
    fd = os.open(os.fspath(path), os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return f.read(limit)
