"""flash-attn's `undefined symbol`: its compiled extension was built against another torch than the installed one.

flash_attn_2_cuda links against torch's C++ library (c10, at::_ops); a torch of another minor version, or built
with the other C++ ABI, lacks some of the symbols it calls, and the dynamic loader says `undefined symbol`.
Which torch the installed flash-attn was built for is written in the name of the release wheels
(`flash_attn-2.6.3+cu123torch2.4cxx11abiFALSE-cp310-cp310-linux_x86_64.whl`, flash-attention's setup.py
`get_wheel_url`): it is read from the installed version's local label or from direct_url.json (an install
from that wheel's URL). A flash-attn built from source says nothing, and neither does one installed from the
index's sdist (its setup.py downloads that wheel and renames it to the plain version): then explain says it
cannot tell.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .judge import NOT_INSPECTED, Context, Judgement

if TYPE_CHECKING:  # pragma: no cover
    from .._env.environment import Distribution

_BUILT = re.compile(r"cu(?P<cuda>\d+)torch(?P<torch>\d+\.\d+)cxx11abi(?P<abi>TRUE|FALSE)", re.IGNORECASE)
_PYTAG = re.compile(r"\.cpython-(?P<py>\d+)")
REBUILD = "pip install --no-build-isolation --no-cache-dir --force-reinstall flash-attn"


@dataclass(frozen=True)
class BuiltFor:
    """The torch, CUDA and C++ ABI one flash-attn wheel was built for, and where that was read."""

    torch: str  # "2.4"
    cuda: str  # "123" (flash-attn names the CUDA major.minor without the dot; 2.7+ only the major, "12")
    cxx11abi: bool
    read_from: str  # "the version 2.6.3+cu123torch2.4cxx11abiFALSE" or "direct_url.json: flash_attn-...whl"


def built_for(dist: Distribution) -> BuiltFor | None:
    """Which torch the installed flash-attn was built for, from its local version label or direct_url.json."""
    m = _BUILT.search(dist.raw_version)
    if m:
        return BuiltFor(m["torch"], m["cuda"], m["abi"].upper() == "TRUE", f"the version {dist.raw_version}")
    if dist.direct_url:
        try:
            url = str(json.loads(dist.direct_url).get("url", ""))
        except (ValueError, AttributeError):
            url = ""
        name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        m = _BUILT.search(name)
        if m:
            return BuiltFor(m["torch"], m["cuda"], m["abi"].upper() == "TRUE", f"direct_url.json: {name}")
    return None


def judge(ctx: Context) -> Judgement:
    """Whether the installed flash-attn was built for the installed torch, and what to install."""
    symbol = ctx.groups.get("symbol", "")
    abi = "__cxx11" in symbol
    cause = ("flash-attn's compiled extension (flash_attn_2_cuda) was built against another torch than the one it is "
             f"loaded with, which has no `{symbol or 'symbol'}`. flash-attn must be reinstalled for "
             "the exact torch minor version (and C++ ABI) every time torch changes.")
    if abi:
        cause += " The symbol is a C++11-ABI one (__cxx11): the build and torch may also disagree on cxx11abi."
    if ctx.env is None:
        return Judgement(None, NOT_INSPECTED, cause=cause)
    env = ctx.env
    dist = env.get("flash-attn")
    torch = env.version_of("torch")
    py = _PYTAG.search(ctx.text)
    facts: dict[str, object] = {"flash_attn": dist.raw_version if dist else None,
                                "torch": str(torch) if torch else None, "torch_cuda": env.torch_cuda,
                                "built_for": None}
    if dist is None:
        return Judgement(None, "flash-attn is not installed here, so this environment cannot have raised it",
                         cause=cause, facts=facts)
    if torch is None:
        return Judgement(None, f"flash-attn {dist.raw_version} is installed here but torch is not", cause=cause,
                         facts=facts)
    here = f"{torch.major}.{torch.minor}"
    cu = (env.torch_cuda or "").split(".")[0]
    wheel = (f"the flash-attn release wheel for torch {here}" + (f", CUDA {cu}" if cu else "")
             + (f", cp{py['py']}" if py else "") + f" (named ...+cu{cu or 'XX'}torch{here}cxx11abi...)")
    fix = (f"Install {wheel} from flash-attention's GitHub release assets, or rebuild it against the installed "
           f"torch: {REBUILD} (needs nvcc). Reinstall it whenever torch changes.")
    built = built_for(dist)
    if built is None:
        return Judgement(None, f"flash-attn {dist.raw_version} here carries no build tag (built from source or from "
                         "the index's sdist), so which torch it was built for cannot be told; torch "
                         f"{torch} is installed", cause=cause, fix=fix, facts=facts)
    facts["built_for"] = {"torch": built.torch, "cuda": built.cuda, "cxx11abi": built.cxx11abi,
                          "read_from": built.read_from}
    cause += f" The installed flash-attn was built for torch {built.torch} (read from {built.read_from})."
    if built.torch != here:
        return Judgement(True, f"flash-attn {dist.raw_version} here was built for torch {built.torch}, but torch "
                         f"{torch} is installed", cause=cause, fix=fix, facts=facts)
    if abi:
        return Judgement(None, f"flash-attn here was built for torch {built.torch} (cxx11abi"
                         f"{'TRUE' if built.cxx11abi else 'FALSE'}), the installed minor version; whether torch "
                         "uses the same C++ ABI cannot be read from its metadata", cause=cause, fix=fix, facts=facts)
    return Judgement(False, f"flash-attn here was built for torch {built.torch} and torch {torch} is installed: the "
                     "error came from another environment (kernel, venv, old copy)", cause=cause, fix=fix,
                     facts=facts)
