"""The environment model: installed distributions, Python, platform, runtime and GPU, without heavy imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .._named import Named
from ..errors import InspectionError
from . import probe as _envprobe
from .gpu import GpuInfo


@dataclass(frozen=True)
class Distribution(Named):
    """One installed distribution, read from its *.dist-info (or *.egg-info) folder."""

    name: str
    version: Version | None
    raw_version: str
    requires: tuple[str, ...] = ()
    requires_python: str | None = None
    path: str = ""
    location: str = ""
    installer: str | None = None
    direct_url: str | None = None


    @property
    def local(self) -> str | None:
        """The local version label, e.g. 'cu118' for torch 2.4.0+cu118."""
        return self.version.local if self.version is not None else None


@dataclass(frozen=True)
class BrokenDistribution:
    """A metadata folder that could not be read; recorded, never fatal."""

    path: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """Two installs of one name on sys.path; the first one is what `import` sees."""

    name: str
    kept: str
    kept_version: str
    shadowed: str
    shadowed_version: str


@dataclass(frozen=True)
class Runtime:
    notebook: bool = False
    colab: bool = False
    kaggle: bool = False
    virtualenv: bool = False


@dataclass(frozen=True)
class Environment:
    """Everything `check` needs to know about one interpreter, as plain facts."""

    executable: str
    prefix: str
    python_version: Version
    markers: Mapping[str, str]
    distributions: Mapping[NormalizedName, Distribution]
    broken: tuple[BrokenDistribution, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    runtime: Runtime = field(default_factory=Runtime)
    pip_version: str | None = None
    uv: str | None = None
    sys_path: tuple[str, ...] = ()
    gpu: GpuInfo = field(default_factory=lambda: GpuInfo(False, reason="not inspected"))

    def get(self, name: str) -> Distribution | None:
        """The installed distribution of that name (any spelling), or None when it is not installed."""
        return self.distributions.get(canonicalize_name(name))

    def version_of(self, name: str) -> Version | None:
        dist = self.get(name)
        return dist.version if dist else None

    @property
    def torch_cuda(self) -> str | None:
        """The CUDA version torch was built for ('12.1'), or None for a CPU/ROCm build or no torch.

        Read without importing torch: torch/version.py (written at build time), else the local version label
        (+cu118), else the CUDA runtime its METADATA requires (cuda-toolkit[...]==13.0.2 from torch 2.10,
        nvidia-cuda-runtime-cu12==12.1.105 before).
        """
        torch = self.get("torch")
        if torch is None:
            return None
        built = _torch_version_py(torch.location)
        if built is not None:
            return built or None
        local = torch.local or ""
        if local.startswith("cu") and local[2:].isdigit():
            return f"{local[2:-1]}.{local[-1]}"
        if local == "cpu" or local.startswith("rocm"):
            return None
        for line in torch.requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            name = canonicalize_name(req.name)
            if name == "cuda-toolkit" or name.startswith("nvidia-cuda-runtime"):
                pins = [s.version for s in req.specifier if s.operator == "=="]
                if pins:
                    return ".".join(pins[0].split(".")[:2])
        return None


_CUDA_LINE = re.compile(r"""^cuda\b[^=]*=\s*(?:'([0-9.]+)'|"([0-9.]+)"|None)""", re.MULTILINE)


def _torch_version_py(location: str) -> str | None:
    """torch/version.py's `cuda = '12.1'` ('' when it says None); None when the file is not there."""
    try:
        with open(os.path.join(location, "torch", "version.py"), encoding="utf-8") as f:
            text = f.read(4096)
    except OSError:
        return None
    m = _CUDA_LINE.search(text)
    if m is None:
        return None
    return m.group(1) or m.group(2) or ""


def _version(raw: str) -> Version | None:
    try:
        return Version(raw)
    except InvalidVersion:
        return None


def from_facts(facts: Mapping[str, Any], gpu: GpuInfo | None = None) -> Environment:
    """Build the typed Environment from the raw facts of `_envprobe.collect()`."""
    dists: dict[NormalizedName, Distribution] = {}
    broken = [BrokenDistribution(b["path"], b["error"]) for b in facts.get("broken", [])]
    for d in facts.get("distributions", []):
        version = _version(d["version"])
        if version is None:
            broken.append(BrokenDistribution(d["path"], f"invalid version {d['version']!r} of {d['name']}"))
        dist = Distribution(
            name=d["name"], version=version, raw_version=d["version"], requires=tuple(d.get("requires") or ()),
            requires_python=d.get("requires_python"), path=d["path"], location=d.get("location", ""),
            installer=d.get("installer"), direct_url=d.get("direct_url"),
        )
        dists.setdefault(dist.key, dist)
    markers = dict(facts["markers"])
    return Environment(
        executable=facts["executable"],
        prefix=facts.get("prefix", ""),
        python_version=Version(markers["python_full_version"].split("+")[0]),
        markers=markers,
        distributions=dists,
        broken=tuple(broken),
        duplicates=tuple(Duplicate(**x) for x in facts.get("duplicates", [])),
        runtime=Runtime(**facts.get("runtime", {})),
        pip_version=facts.get("pip_version"),
        uv=facts.get("uv"),
        sys_path=tuple(facts.get("sys_path", ())),
        gpu=gpu if gpu is not None else GpuInfo(False, reason="not inspected"),
    )


def facts_of(python: str | os.PathLike[str] | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Raw facts of this interpreter, or of another one (`--python PATH`) by running the probe script in it."""
    if python is None:
        return _envprobe.collect()
    exe = Path(python)
    if exe.is_dir():  # a venv folder: use its interpreter
        for cand in (exe / "bin" / "python", exe / "Scripts" / "python.exe"):
            if cand.exists():
                exe = cand
                break
    if not exe.exists():
        raise InspectionError(f"--python {python}: no such interpreter")
    try:
        proc = subprocess.run([str(exe), _envprobe.__file__], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise InspectionError(f"--python {python}: the interpreter did not answer within {timeout:.0f} s") from e
    except OSError as e:
        raise InspectionError(f"--python {python}: cannot run it: {e.strerror or e}") from e
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InspectionError(f"--python {python}: the interpreter failed: {last}")
    try:
        return json.loads(proc.stdout)
    except ValueError as e:
        raise InspectionError(f"--python {python}: unreadable answer from the interpreter") from e


def inspect_environment(
    python: str | os.PathLike[str] | None = None, gpu: GpuInfo | str | None = None
) -> Environment:
    """Inspect an environment: this interpreter by default; `gpu` is a GpuInfo, a --gpu target name, or detected."""
    from . import gpu as _gpu

    if isinstance(gpu, str):
        gpu_info = _gpu.declared(gpu)
    elif gpu is None:
        gpu_info = _gpu.detect()
    else:
        gpu_info = gpu
    return from_facts(facts_of(python), gpu_info)
