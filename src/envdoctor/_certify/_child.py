"""Subprocess entry point of one probe: read the request on stdin, run the probe, write its Outcome as JSON."""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import Any


def _abi_hint(text: str) -> str:
    if "undefined symbol" in text:
        return " (an extension built against another torch or CUDA ABI: reinstall it for this torch)"
    if "no kernel image is available" in text:
        return " (this torch build has no kernels for the GPU's architecture)"
    return ""


def main() -> int:
    request = json.loads(sys.stdin.read())
    from .registry import FAIL, INCONCLUSIVE, Outcome, ProbeContext

    result_file = request["result"]
    ctx = ProbeContext(**request["context"])
    module, _, qualname = request["target"].partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        outcome = obj(ctx)
        if not isinstance(outcome, Outcome):
            outcome = Outcome(FAIL, f"probe returned {type(outcome).__name__}, not an Outcome")
    except BaseException as e:  # the probe's own failure is its result: ImportError, RuntimeError, CUDA errors
        text = f"{type(e).__name__}: {e}"
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        details = {"traceback": "".join(traceback.format_exception(e)[-6:])[-4000:]}
        if type(e).__name__ == "OutOfMemoryError":  # another process holds the GPU: says nothing of the stack
            outcome = Outcome(INCONCLUSIVE, f"the GPU ran out of memory (is it busy?): {first[:300]}", details)
        else:
            outcome = Outcome(FAIL, first[:400] + _abi_hint(text), details)
    with open(result_file, "w", encoding="utf-8") as f:
        json.dump({"status": outcome.status.value, "reason": outcome.reason, "details": dict(outcome.details)}, f,
                  default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
