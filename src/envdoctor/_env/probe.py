"""Raw facts about one Python environment, stdlib only: run in-process, or as a script in another interpreter.

It must not import anything outside the standard library, because `--python PATH` runs it in a
virtual environment that may not have envdoctor's dependencies (or may be broken). The folders it reads
come from `_fastpath.metadata_dirs`, the one scan of sys.path that the guard's fingerprint also uses; as a
script it loads that stdlib-only file by its path, so nothing of the inspected environment can shadow it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sys

_NAME_RE = re.compile(r"[-_.]+")


def _load_fastpath():  # type: ignore[no-untyped-def]
    """envdoctor/_fastpath.py, loaded by path: as a script in another interpreter there is no envdoctor package."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_fastpath.py")
    spec = importlib.util.spec_from_file_location("_envdoctor_fastpath", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __package__:
    from .. import _fastpath
else:  # pragma: no cover - run as a script by `--python PATH` (tests cover it through a real venv)
    _fastpath = _load_fastpath()


def _canonical(name: str) -> str:
    return _NAME_RE.sub("-", name).lower()


def _headers(text: str) -> dict[str, list[str]]:
    """The header block of a METADATA/PKG-INFO file (RFC 822 style), stopping at the first blank line."""
    out: dict[str, list[str]] = {}
    last = None
    for line in text.splitlines():
        if not line:  # only an empty line ends the headers: a whitespace-only one continues a folded header (License)
            break
        if line[0] in " \t" and last is not None:
            out[last][-1] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        out.setdefault(last, []).append(value.strip())
    return out


def _read_dist(path: str) -> dict:
    meta_name = "METADATA" if path.endswith(".dist-info") else "PKG-INFO"
    meta = os.path.join(path, meta_name)
    try:
        with open(meta, encoding="utf-8", errors="replace") as f:
            text = f.read(65536)  # headers come first; the long description is not needed
    except OSError as e:
        return {"path": path, "error": f"cannot read {meta_name}: {e.strerror or e}"}
    h = _headers(text)
    name = (h.get("name") or [""])[0]
    version = (h.get("version") or [""])[0]
    if not name or not version:
        return {"path": path, "error": f"{meta_name} has no {'Name' if not name else 'Version'}"}
    requires = h.get("requires-dist", [])
    if path.endswith(".egg-info"):
        requires = _egg_requires(path)
    installer = None
    try:
        with open(os.path.join(path, "INSTALLER"), encoding="utf-8") as f:
            installer = f.read().strip() or None
    except OSError:
        pass
    direct_url = None
    try:
        with open(os.path.join(path, "direct_url.json"), encoding="utf-8") as f:
            direct_url = f.read()
    except OSError:
        pass
    return {
        "path": path,
        "name": name,
        "version": version,
        "requires": requires,
        "requires_python": h["requires-python"][0] if h.get("requires-python") else None,
        "installer": installer,
        "direct_url": direct_url,
    }


def _egg_requires(path: str) -> list[str]:
    """requires.txt of an egg-info: plain lines, then [extra] / [:marker] sections."""
    try:
        with open(os.path.join(path, "requires.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out, section = [], ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            section = line[1:-1]
            continue
        extra, _, marker = section.partition(":")
        conds = []
        if extra:
            conds.append(f'extra == "{extra}"')
        if marker:
            conds.append(f"({marker})")
        out.append(line + (" ; " + " and ".join(conds) if conds else ""))
    return out


def distributions(paths: list[str]) -> dict:
    """Every distribution on the given sys.path entries; the first of a name wins, as at import time."""
    seen: dict[str, dict] = {}
    broken: list[dict] = []
    duplicates: list[dict] = []
    for entry, n, is_dir in _fastpath.metadata_dirs(paths):
        full = os.path.join(entry or ".", n)
        if not is_dir:  # an egg-info *file* (distutils) has no folder to read; importlib.metadata skips it too
            continue
        d = _read_dist(full)
        if "error" in d:
            broken.append(d)
            continue
        d["location"] = entry
        key = _canonical(d["name"])
        if key in seen:
            duplicates.append({"name": key, "kept": seen[key]["path"], "kept_version": seen[key]["version"],
                               "shadowed": full, "shadowed_version": d["version"]})
            continue
        seen[key] = d
    return {"distributions": list(seen.values()), "broken": broken, "duplicates": duplicates}


def marker_environment() -> dict:
    """The PEP 508 marker variables of this interpreter (the same keys packaging uses)."""
    impl = sys.implementation
    iver = f"{impl.version.major}.{impl.version.minor}.{impl.version.micro}"
    if impl.version.releaselevel != "final":
        iver += impl.version.releaselevel[0] + str(impl.version.serial)
    return {
        "implementation_name": impl.name,
        "implementation_version": iver,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def runtime() -> dict:
    """Notebook / Colab / Kaggle detection without importing IPython."""
    env = os.environ
    colab = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in env or "COLAB_GPU" in env
    kaggle = "KAGGLE_KERNEL_RUN_TYPE" in env or "KAGGLE_URL_BASE" in env
    ipy = sys.modules.get("IPython")
    notebook = False
    if ipy is not None:
        try:
            shell = ipy.get_ipython()  # type: ignore[attr-defined]
            notebook = shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")
        except Exception:
            notebook = False
    return {"notebook": notebook or colab or kaggle, "colab": colab, "kaggle": kaggle,
            "virtualenv": sys.prefix != getattr(sys, "base_prefix", sys.prefix)}


def find_uv() -> str | None:
    """The one rule for finding uv (the resolver reuses it): ENVDOCTOR_UV, next to this interpreter, its scripts
    folder (where the `uv` wheel puts it), then PATH: a venv's bin/ is often not on PATH."""
    import sysconfig

    override = os.environ.get("ENVDOCTOR_UV")
    if override:
        return override if os.path.isfile(override) else shutil.which(override)
    name = "uv.exe" if os.name == "nt" else "uv"
    for folder in (os.path.dirname(sys.executable), sysconfig.get_path("scripts")):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return shutil.which("uv")


def collect() -> dict:
    """All raw facts of the running interpreter, as plain JSON-able data."""
    facts = distributions([p for p in sys.path])
    pip_version = next((d["version"] for d in facts["distributions"] if _canonical(d["name"]) == "pip"), None)
    facts.update({
        "executable": sys.executable,
        "prefix": sys.prefix,
        "sys_path": list(sys.path),
        "markers": marker_environment(),
        "runtime": runtime(),
        "pip_version": pip_version,
        "uv": find_uv(),
    })
    return facts


if __name__ == "__main__":
    del sys.path[0]  # the folder of this script is not part of the inspected environment
    json.dump(collect(), sys.stdout)
