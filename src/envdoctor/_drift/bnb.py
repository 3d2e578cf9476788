"""bitsandbytes errors judged against this environment: the GPU probe, torch's CUDA, the CUDA libraries bnb ships.

bitsandbytes loads one native library at import: `libbitsandbytes_cuda<ver>` for the CUDA torch was built with
(or the one `BNB_CUDA_VERSION` names), else `libbitsandbytes_cpu`. Every message here is one way that choice went
wrong. Before 0.43.0 the choice was `cuda_setup/main.py`'s search for a libcudart, which failed on many working
machines; 0.43.0 replaced it with torch's own CUDA version (bitsandbytes==0.43.3:bitsandbytes/cextension.py).
The facts come from installed metadata (bnb's RECORD lists the libraries it ships) and `_env.gpu`'s probe
(NVML / nvidia-smi); nothing is imported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from .judge import NOT_INSPECTED, Context, Judgement

if TYPE_CHECKING:  # pragma: no cover
    from .._env.environment import Environment

NEW_LOADER = Version("0.43.0")  # the release that loads the library for torch's CUDA instead of searching
_LIB = re.compile(r"libbitsandbytes_cuda(\d+)")
_UPGRADE = "pip install -U 'bitsandbytes>=0.45' (its wheels ship a library for every supported CUDA)"


@dataclass(frozen=True)
class Facts:
    """What decides which library bitsandbytes loads here."""

    gpu: str  # "cuda", "mps" or "none"
    gpu_said: str  # the GPU's name, or why none was found
    bnb: Version | None
    torch: Version | None
    torch_cuda: str | None  # "12.1"; None for a CPU build or no torch
    shipped: tuple[str, ...]  # the CUDA versions of the libraries bnb's RECORD lists, e.g. ("118", "121")
    override: str | None  # BNB_CUDA_VERSION in this process (None or "" when unset)

    @property
    def wanted(self) -> str | None:
        """The library version bnb loads for torch's CUDA: '121' for CUDA 12.1."""
        return self.torch_cuda.replace(".", "") if self.torch_cuda else None

    def to_dict(self) -> dict[str, object]:
        return {"gpu": self.gpu, "gpu_said": self.gpu_said, "bitsandbytes": str(self.bnb) if self.bnb else None,
                "torch": str(self.torch) if self.torch else None, "torch_cuda": self.torch_cuda,
                "shipped_cuda_libraries": list(self.shipped), "bnb_cuda_version_here": self.override or None}


def shipped(env: Environment) -> tuple[str, ...]:
    """The CUDA versions of the `libbitsandbytes_cuda*` files the installed bitsandbytes' RECORD lists."""
    dist = env.get("bitsandbytes")
    if dist is None or not dist.path:
        return ()
    try:
        record = (Path(dist.path) / "RECORD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(sorted(set(_LIB.findall(record)), key=int))


def facts(env: Environment, environ: Mapping[str, str] = os.environ) -> Facts:
    """This environment's facts for bitsandbytes (environ: this process's variables, replaceable in tests)."""
    kind = env.gpu.kind if env.gpu.available else "none"
    said = f"{env.gpu.name or kind} ({env.gpu.source})" if env.gpu.available else (env.gpu.reason or "none found")
    return Facts(kind, said, env.version_of("bitsandbytes"), env.version_of("torch"), env.torch_cuda, shipped(env),
                 environ.get("BNB_CUDA_VERSION"))


def _cpu_library(f: Facts) -> Judgement:
    """Why bitsandbytes loaded its CPU library here, or that it would not."""
    d = f.to_dict()
    if f.gpu == "none":
        return Judgement(True, f"no GPU detected here ({f.gpu_said}): bitsandbytes loads its CPU library",
                         cause="No CUDA GPU is visible, so bitsandbytes loaded its CPU-only library: 8-bit/4-bit "
                               "quantization and 8-bit optimizers need an NVIDIA GPU.",
                         fix="Run quantized loading and 8-bit optimizers on a machine with an NVIDIA GPU (check "
                             "`nvidia-smi`); without one, load the model without quantization_config and use "
                             "optim='adamw_torch'.", facts=d)
    if f.gpu == "mps":
        return Judgement(True, f"this machine's GPU is Apple MPS ({f.gpu_said}), not CUDA",
                         cause="bitsandbytes found no CUDA GPU (this is an Apple MPS machine), so it loaded its "
                               "CPU library; its MPS support covers only part of the operations.",
                         fix="Run QLoRA/8-bit optimizers on a CUDA GPU, or train without quantization on the Mac.",
                         facts=d)
    if f.bnb is not None and f.bnb < NEW_LOADER:
        return Judgement(True, f"bitsandbytes {f.bnb} is installed here, older than {NEW_LOADER}, whose CUDA "
                         "search fails on many working setups", facts=d,
                         cause=f"bitsandbytes {f.bnb} did not find a CUDA runtime it could match (its cuda_setup "
                               f"search, replaced in {NEW_LOADER}), so it fell back to the CPU library although this "
                               f"machine has a GPU ({f.gpu_said}).", fix=_UPGRADE)
    if f.torch is not None and f.torch_cuda is None:
        return Judgement(True, f"torch {f.torch} here is a CPU build, so bitsandbytes loads its CPU library",
                         cause=f"torch {f.torch} is a CPU-only build, so bitsandbytes (which follows torch's CUDA) "
                               "loads its CPU library even though this machine has a GPU.",
                         fix="Install the CUDA build of torch for your driver (`envdoctor check` names it), then "
                             "reinstall bitsandbytes.", facts=d)
    missing = _missing(f)
    if missing is not None:
        return missing
    if f.bnb is None:
        return Judgement(None, "bitsandbytes is not installed here, so this environment cannot have printed it",
                         facts=d)
    return Judgement(False, f"GPU {f.gpu_said}, torch built for CUDA {f.torch_cuda or 'unknown'}, bitsandbytes "
                     f"{f.bnb} ships libbitsandbytes_cuda{f.wanted or '?'}: this environment loads the CUDA "
                     "library, so the message came from another environment", facts=d)


def _missing(f: Facts) -> Judgement | None:
    """bitsandbytes ships no library for the CUDA it will look for (torch's, or BNB_CUDA_VERSION's)."""
    look = f.override or f.wanted
    if not f.shipped or look is None or look in f.shipped:
        return None
    source = f"BNB_CUDA_VERSION={f.override}" if f.override else f"torch {f.torch} (CUDA {f.torch_cuda})"
    return Judgement(True, f"{source} asks for libbitsandbytes_cuda{look}, which bitsandbytes {f.bnb} does not "
                     f"ship (it ships {', '.join(f.shipped)})", facts=f.to_dict(),
                     cause=f"bitsandbytes {f.bnb} has no library for CUDA {look}, which {source} asks for, so it "
                           "falls back to the CPU library.",
                     fix=f"{_UPGRADE}; or unset BNB_CUDA_VERSION" if f.override else _UPGRADE)


def no_gpu_build(ctx: Context) -> Judgement:
    """'compiled without GPU support': the CPU library was loaded; why, here."""
    if ctx.env is None:
        return Judgement(None, NOT_INSPECTED)
    return _cpu_library(facts(ctx.env))


def cpu_library(ctx: Context) -> Judgement:
    """'libbitsandbytes_cpu.so: undefined symbol: cget_col_row_stats' / 'Defaulting to libbitsandbytes_cpu.so'."""
    if ctx.env is None:
        return Judgement(None, NOT_INSPECTED)
    j = _cpu_library(facts(ctx.env))
    if j.cause is None:
        return j
    return Judgement(j.has_cause, j.why, cause=f"{j.cause} A GPU function was then called on that library "
                     "(cget_col_row_stats, cadam32bit_grad_fp32, ...), which it does not have.", fix=j.fix,
                     facts=j.facts)


def cuda_setup(ctx: Context) -> Judgement:
    """'CUDA Setup failed despite GPU being available' / 'Could not load bitsandbytes native library': no CUDA library."""
    if ctx.env is None:
        return Judgement(None, NOT_INSPECTED)
    f = facts(ctx.env)
    if f.gpu != "cuda":
        return Judgement(False, f"no CUDA GPU detected here ({f.gpu_said}): bitsandbytes looks for its CUDA "
                         "library only where torch has CUDA, so the message came from another machine",
                         facts=f.to_dict())
    j = _cpu_library(f)
    if j.has_cause is not False:
        return j
    if f.override and f.override != f.wanted:
        return Judgement(True, f"BNB_CUDA_VERSION={f.override} is set here, but torch is built for CUDA "
                         f"{f.torch_cuda}", fix="unset BNB_CUDA_VERSION (export BNB_CUDA_VERSION=)", facts=f.to_dict())
    return j


def override(ctx: Context) -> Judgement:
    """'BNB_CUDA_VERSION=124 environment variable detected': the override, against torch's CUDA and bnb's files."""
    want = ctx.groups.get("override", "")
    cause = (f"BNB_CUDA_VERSION={want} makes bitsandbytes load libbitsandbytes_cuda{want} instead of the library "
             "for torch's own CUDA; when that file is missing or does not match the CUDA runtime, bitsandbytes falls "
             "back to the CPU library or fails to load.")
    if ctx.env is None:
        return Judgement(None, NOT_INSPECTED, cause=cause)
    f = facts(ctx.env)
    d = f.to_dict()
    if f.torch_cuda:
        cause += f" torch here is built for CUDA {f.torch_cuda} (libbitsandbytes_cuda{f.wanted})."
    if not f.override:
        return Judgement(False, "BNB_CUDA_VERSION is not set in this environment: the override came from the shell, "
                         "notebook or container that printed this (check `env | grep BNB`)", cause=cause, facts=d)
    missing = _missing(f)
    if missing is not None:
        return Judgement(True, missing.why, cause=cause, facts=d)
    if f.wanted is not None and f.override != f.wanted:
        return Judgement(True, f"BNB_CUDA_VERSION={f.override} is set here, but torch {f.torch} is built for CUDA "
                         f"{f.torch_cuda}", cause=cause, facts=d)
    return Judgement(None, f"BNB_CUDA_VERSION={f.override} is set here and matches what can be read (torch's CUDA "
                     f"{f.torch_cuda or 'unknown'}); the library may still not match the CUDA runtime on the "
                     "library path", cause=cause, facts=d)
