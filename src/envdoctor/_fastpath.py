"""The stdlib-only fast path: where the cache and the matrices are, the dist-info folders, the GPUs' /proc identity.

`envdoctor.guard()` runs this on every start of a training script, so it imports `os` and `sys` only (no
pathlib, re, json, typing: each costs the guard milliseconds on a slow CI machine). Each rule here is the
one definition of it: `_paths` wraps the folders in `Path`, the matrix loader adds its error messages and
non-numeric versions, `_env.probe` reads the metadata of the folders found here (it loads this file by
path when it runs in another interpreter), `_env.gpu` and `_certify.gpuid` read the GPUs through it.
`tests/core/test_fastpath.py` fences the imports.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

# ---------------------------------------------------------------- the cache folder

def cache_folder() -> str:
    """envdoctor's cache folder: ENVDOCTOR_CACHE_DIR, else platformdirs' user cache dir (its rule, inlined for Unix)."""
    override = os.environ.get("ENVDOCTOR_CACHE_DIR")
    if override:
        return override
    if sys.platform.startswith("linux"):  # platformdirs' Unix rule: $XDG_CACHE_HOME or ~/.cache
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        return os.path.join(base, "envdoctor")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/envdoctor")
    from platformdirs import user_cache_dir  # Windows and the rest: platformdirs knows their rules

    return str(user_cache_dir("envdoctor", appauthor=False))


# ---------------------------------------------------------------- matrices by reference

BUNDLED_MATRICES = os.path.join(os.path.dirname(os.path.realpath(__file__)), "matrices")


def user_matrix_folders() -> list[str]:
    """Extra folders searched for matrices by name: ENVDOCTOR_MATRIX_PATH (os.pathsep-separated)."""
    return [p for p in os.environ.get("ENVDOCTOR_MATRIX_PATH", "").split(os.pathsep) if p]


def looks_like_path(ref: str) -> bool:
    """Whether a matrix reference is a file path rather than `name` or `name@version`."""
    return ref.endswith(".toml") or "/" in ref or "\\" in ref or ref.startswith(".")


def matrix_files(name: str | None = None) -> list[tuple[str, str, str, bool]]:
    """(name, version, path, bundled) of every matrix on the search path (of one name), the first of a ref winning."""
    out: dict[tuple[str, str], tuple[str, str, str, bool]] = {}
    for i, root in enumerate([BUNDLED_MATRICES, *user_matrix_folders()]):
        try:
            names = sorted(n for n in os.listdir(root) if not n.startswith(".")) if name is None else [name]
        except OSError:
            continue
        for n in names:
            folder = os.path.join(root, n)
            try:
                files = sorted(os.listdir(folder))
            except OSError:
                continue
            for f in files:
                if f.endswith(".toml") and not f.startswith("."):  # what the loader's glob("*/*.toml") finds
                    out.setdefault((n, f[:-5]), (n, f[:-5], os.path.join(folder, f), i == 0))
    return list(out.values())


def _release(version: str) -> tuple[int, ...] | None:
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def resolve_light(ref: str) -> str | None:
    """The matrix file a reference names, or None when the loader must decide (not found, or non-numeric versions).

    The loader's resolve_ref gives the same answer wherever this gives one (tests compare them), and words the errors.
    """
    if looks_like_path(ref):
        path = os.path.realpath(os.path.expanduser(ref))
        return path if os.path.isfile(path) else None
    name, _, version = ref.partition("@")
    found = {v: p for _, v, p, _ in matrix_files(name)}
    if version:
        return found.get(version)
    keyed = [(_release(v), p) for v, p in found.items()]
    if not keyed or any(k is None for k, _ in keyed):
        return None
    return max(keyed, key=lambda kp: kp[0] or ())[1]


# ---------------------------------------------------------------- installed distributions

METADATA_SUFFIXES = (".dist-info", ".egg-info")


def metadata_dirs(paths: Iterable[str]) -> list[tuple[str, str, bool]]:
    """(path entry, metadata folder name, is a folder) of every distribution, in sys.path order, names sorted.

    A folder that appears twice on the path (or through a link) is scanned once, as one install.
    """
    out: list[tuple[str, str, bool]] = []
    visited: set[str] = set()
    for entry in paths:
        real = os.path.realpath(entry or ".")
        if real in visited:
            continue
        visited.add(real)
        try:
            with os.scandir(entry or ".") as it:
                found = sorted((e.name, e.is_dir()) for e in it if e.name.endswith(METADATA_SUFFIXES))
        except OSError:
            continue  # a missing or unreadable entry, or a zip file: it holds no installed distribution
        out += [(entry, name, is_dir) for name, is_dir in found]
    return out


# ---------------------------------------------------------------- where an import resolves

def _extension_suffixes() -> list[str]:
    import _imp  # built in: what importlib.machinery.EXTENSION_SUFFIXES reads, without importing importlib

    return list(_imp.extension_suffixes())


def module_origins(names: Iterable[str], paths: Iterable[str]) -> dict[str, str]:
    """Where `import NAME` finds each top-level name on `paths`, as the path finder would; '' when nowhere.

    The path finder's rule per path entry: a folder NAME with an `__init__` wins, then a module file
    (extensions, then .py, then .pyc); a folder without `__init__` is a namespace portion, used only when no
    entry has a package or module. One listdir per path entry (the certificate records these, so a module
    shadowed through PYTHONPATH or a file planted before site-packages invalidates it). Import hooks on
    sys.meta_path (some editable installs) are not seen; the answer is then '' at certify and guard alike.
    """
    suffixes = _extension_suffixes()
    modules = (*suffixes, ".py", ".pyc")
    entries = list(dict.fromkeys(paths))
    listings: dict[str, frozenset[str] | None] = {}
    out: dict[str, str] = {}
    for name in names:
        found = namespace = ""
        for entry in entries:
            if entry in listings:
                items = listings[entry]
            else:
                try:
                    items = frozenset(os.listdir(entry or "."))
                except OSError:  # missing, unreadable, or a zip file (stdlib only, never a checked package)
                    items = None
                listings[entry] = items
            if not items:
                continue
            base = os.path.join(entry or ".", name)
            if name in items:
                if any(os.path.isfile(os.path.join(base, "__init__" + s)) for s in (".py", *suffixes, ".pyc")):
                    found = base + os.sep
                    break
                if not namespace and os.path.isdir(base):
                    namespace = base + os.sep + " (namespace)"
            hit = next((name + s for s in modules if name + s in items), None)
            if hit:
                found = os.path.join(entry or ".", hit)
                break
        out[name] = found or namespace
    return out


# ---------------------------------------------------------------- NVIDIA GPUs, cheaply

PROC_ROOT = "/proc/driver/nvidia"
# What an NVIDIA driver leaves on Linux: its /proc folder, its control device (containers that hide /proc),
# WSL's /dev/dxg and NVML library folder (WSL has no /proc/driver/nvidia).
DRIVER_SIGNS = (PROC_ROOT, "/dev/nvidiactl", "/dev/dxg", "/usr/lib/wsl/lib")


def no_driver_reason(signs: Iterable[str] = DRIVER_SIGNS) -> str:
    """Why no NVIDIA driver can be loaded here (native Linux without any sign of one), or '' when one may be."""
    if not sys.platform.startswith("linux") or any(os.path.exists(p) for p in signs):
        return ""
    return "no NVIDIA driver loaded (no /proc/driver/nvidia, /dev/nvidiactl or /dev/dxg)"


def proc_driver_version(root: str = PROC_ROOT) -> str | None:
    """The driver version from `<root>/version`; '' when unreadable, None when the file is absent."""
    try:
        with open(os.path.join(root, "version"), encoding="utf-8") as f:
            text = f.read(4096)
    except OSError:
        return None
    for word in text.split():  # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Tue ..."
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    return ""


def proc_gpus(root: str = PROC_ROOT) -> list[tuple[str, str]] | None:
    """(UUID, model) of each GPU in `<root>/gpus/*/information`, in PCI bus order (NVML's); None without the folder."""
    gpus = os.path.join(root, "gpus")
    try:
        buses = sorted(os.listdir(gpus))
    except OSError:
        return None
    out: list[tuple[str, str]] = []
    for bus in buses:
        try:
            with open(os.path.join(gpus, bus, "information"), encoding="utf-8") as f:
                info = f.read(8192)
        except OSError:
            continue
        fields = {}
        for line in info.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        if fields.get("gpu uuid"):
            out.append((fields["gpu uuid"], fields.get("model", "")))
    return out


# ---------------------------------------------------------------- an interrupted fix's journal

FIX_JOURNAL = "fix-state.json"  # the journal of a fix in progress, in the environment's work folder


def workdir_in_prefix(prefix: str) -> bool:
    """Whether a fix's work folder is `<prefix>/.envdoctor` (a writable prefix: the same filesystem as
    site-packages, so backups can be hard links); else it is in envdoctor's cache (`_fix.workdir.workdir_for`)."""
    return bool(prefix) and os.path.isdir(prefix) and os.access(prefix, os.W_OK)


def prefix_of(executable: str) -> str | None:
    """A venv's prefix from its interpreter's path without running it (pyvenv.cfg beside bin/), else None."""
    root = os.path.dirname(os.path.dirname(executable))
    return root if os.path.isfile(os.path.join(root, "pyvenv.cfg")) else None


def journal_may_exist(executable: str | None = None) -> bool:
    """A few stats: False when the environment of `executable` surely has no fix journal (the common case, so
    that `check` and `guard()` import none of the fix machinery); True when it has one or cannot tell."""
    exe = executable or sys.executable
    # Not realpath: a venv's python is a symlink to the same base interpreter as envdoctor's own.
    prefix = prefix_of(exe) or (sys.prefix if os.path.abspath(exe) == os.path.abspath(sys.executable) else None)
    if prefix is None:
        return True
    if workdir_in_prefix(prefix):
        return os.path.exists(os.path.join(prefix, ".envdoctor", FIX_JOURNAL))
    # a read-only prefix: the work folder is in the cache, keyed by the prefix (pathlib, hashlib)
    from ._fix.workdir import workdir_for

    return (workdir_for(prefix) / FIX_JOURNAL).exists()
