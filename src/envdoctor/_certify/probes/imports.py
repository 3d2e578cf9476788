"""Tier 1: import the stack in a fresh interpreter, catching ABI errors (undefined symbols, missing CUDA libraries)."""

from __future__ import annotations

import importlib
import importlib.util

from pydantic import Field

from ..params import Identifier, MatrixFacts, ModuleName, ProbeParams
from ..registry import Outcome, ProbeContext, register_probe

# import name -> distribution name, in dependency order (torch first: a broken torch explains the rest)
DEFAULT_MODULES = {
    "torch": "torch", "transformers": "transformers", "peft": "peft", "trl": "trl",
    "bitsandbytes": "bitsandbytes", "galore_torch": "galore-torch",
}


class ImportsParams(ProbeParams):
    """Params of imports: the modules to import, each an import name of one of the matrix's own packages."""

    modules: list[ModuleName] | dict[ModuleName, Identifier | str] | None = Field(
        None, description="Modules to import (a list, or a table module -> distribution); default: the stack's.")

    def names(self) -> dict[str, str]:
        """module -> distribution, as given (None: the defaults)."""
        given = self.modules
        if given is None:
            return dict(DEFAULT_MODULES)
        return {m: m for m in given} if isinstance(given, list) else dict(given)

    def problems(self, facts: MatrixFacts) -> list[str]:
        if self.modules is None:
            return []
        return refused(self.names(), facts.import_names)


def refused(modules: dict[str, str], allowed: frozenset[str] | set[str]) -> list[str]:
    """The modules outside the matrix's packages' import names (issue 15: a matrix must not import `os`)."""
    return [f"params.modules: {mod!r} is not an import name of the matrix's packages "
            f"({', '.join(sorted(allowed)) or 'it lists none'}); a matrix imports only its own packages"
            for mod in modules if mod.split(".")[0] not in allowed]


def _hint(text: str) -> str:
    if "undefined symbol" in text:
        return ": built against another torch/CUDA ABI; reinstall it for the installed torch"
    if "libcudart" in text or "libcublas" in text or "libnvJitLink" in text:
        return ": a CUDA library is missing; the build does not match the installed CUDA runtime"
    return ""


@register_probe("imports", 1, timeout=300.0, params=ImportsParams)
def imports(ctx: ProbeContext) -> Outcome:
    """Import torch, transformers, peft, trl, bitsandbytes and galore_torch (params.modules overrides the list)."""
    params = ImportsParams.model_validate(ctx.params)
    modules = params.names()
    if params.modules is not None:  # again here, against the names certify computed: nothing else is imported
        bad = refused(modules, set(ctx.matrix.get("import_names") or ()))
        if bad:
            return Outcome.failed("refused: " + "; ".join(bad))
    in_matrix = {k.lower().replace("_", "-") for k in ctx.matrix.get("packages", {})}
    results: dict[str, str] = {}
    failures: list[str] = []
    for mod, dist in modules.items():
        if importlib.util.find_spec(mod) is None:
            if dist.lower() in in_matrix or not in_matrix:
                results[mod] = "not installed"
                failures.append(f"{mod} is not installed")
            else:
                results[mod] = "not installed (not in the matrix)"
            continue
        try:
            m = importlib.import_module(mod)
        except BaseException as e:  # ImportError, OSError from a missing .so, RuntimeError from a CUDA check
            text = f"{type(e).__name__}: {e}"
            results[mod] = text[:300]
            failures.append(f"import {mod}: {text.splitlines()[0][:200]}{_hint(text)}")
            continue
        results[mod] = str(getattr(m, "__version__", "ok"))
    if "transformers" in results and "torch" in results and not failures:
        from transformers.utils import is_torch_available

        if not is_torch_available():  # transformers imports fine but disabled torch (too old for it)
            failures.append("transformers disabled its PyTorch support: the installed torch is older than it needs")
    if failures:
        return Outcome.failed("; ".join(failures), modules=results)
    return Outcome.passed(", ".join(f"{k} {v}" for k, v in results.items()), modules=results)
