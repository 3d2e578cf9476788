"""`envdoctor certify`: run the check and the matrix's probes up to a tier, then write a signed certificate."""

from __future__ import annotations

import difflib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _version
from ..errors import UsageError
from . import registry, store
from .fingerprint import dir_tokens, distribution_tokens, fingerprint, python_id
from .registry import FAIL, PASS, SKIPPED, ProbeContext
from .runner import ProbeResult, run_probe

Reporter = Callable[[ProbeResult], None]


@dataclass(frozen=True)
class PlannedProbe:
    name: str
    tier: int
    params: dict[str, Any]


@dataclass(frozen=True)
class CertifyResult:
    """What one certification found and where its certificate went."""

    matrix_ref: str
    tier: int
    device: str
    gpu: dict[str, Any]
    results: tuple[ProbeResult, ...]
    certified: bool
    check_ok: bool | None
    certificate: store.Certificate | None
    path: str | None
    duration_s: float

    @property
    def summary(self) -> str:
        bad = [r for r in self.results if not r.status.ok]
        if not bad:
            n = sum(r.status == PASS for r in self.results)
            return f"{n} passed, {sum(r.status == SKIPPED for r in self.results)} skipped"
        return "; ".join(f"{r.name} {r.status}: {r.reason}" for r in bad[:3])


def plan(matrix: Any, tier: int, extra: tuple[str, ...] = ()) -> list[PlannedProbe]:
    """The probes to run: the matrix's [[probes]] (or the defaults when it names none) up to `tier`, lowest tier first.

    `extra` names more registered probes to run at their default tier (`certify --probe NAME`).
    """
    from .probes import DEFAULT_PROBES

    refs = [PlannedProbe(p.name, p.tier, dict(p.params)) for p in matrix.probes] or \
        [PlannedProbe(n, t, {}) for n, t in DEFAULT_PROBES]
    for name in extra:
        if any(r.name == name for r in refs):
            continue
        spec = registry.get(name)
        refs.append(PlannedProbe(name, spec.tier if spec else tier, {}))
    return sorted((p for p in refs if 1 <= p.tier <= tier), key=lambda p: p.tier)


def _matrix_context(matrix: Any) -> dict[str, Any]:
    bf16 = matrix.gpu.bf16
    return {
        "name": matrix.name, "version": matrix.version, "ref": matrix.ref,
        "packages": {p.name: str(p.specifier) for p in matrix.packages},
        "bf16": None if bf16 is None else {"min_compute_capability": bf16.min_compute_capability,
                                           "fallback": bf16.fallback},
    }


def _matrix_files(matrix: Any) -> list[dict[str, str | None]]:
    leaf = Path(matrix.source)
    try:
        from .._matrix.loader import _chain

        paths = [p for p, _, _ in _chain(leaf)]
    except Exception:  # the chain is re-read only to record its files; the leaf alone still pins the matrix
        paths = [leaf]
    return [{"path": os.path.realpath(p), "sha256": store.file_sha256(str(p))} for p in paths]


def _validated(m: Any, planned: list[PlannedProbe], env: Any) -> tuple[list[PlannedProbe], dict[str, Any]]:
    """The planned probes with their params validated (as the probes get them), and the matrix facts.

    Raises MatrixError (exit 2) naming the matrix file and each probe whose name or params are refused, before
    any probe runs: a matrix is data, never code (issue 15).
    """
    from ..errors import MatrixError
    from .params import matrix_facts, validate, validate_probe_params

    problems = validate_probe_params(m, env)
    facts = matrix_facts(m, env)
    out = []
    for p in planned:
        spec = registry.get(p.name)
        if spec is None:  # an --probe NAME the registry lacks (the matrix's own are in `problems` already)
            hint = difflib.get_close_matches(p.name, sorted(registry.all_probes()), n=1)
            problems.append(f"--probe {p.name}: no probe of that name is registered"
                            f"{f' (did you mean {hint[0]!r}?)' if hint else ''}")
            continue
        params, bad = validate(spec, p.params, facts, f"{m.source}: probe {p.name}")
        if not bad:
            out.append(PlannedProbe(p.name, p.tier, params))
    if problems:
        raise MatrixError(f"{m.source}: {len(problems)} problem(s) in [[probes]]", tuple(dict.fromkeys(problems)))
    return out, {"import_names": sorted(facts.import_names)}


def _checked(m: Any, env: Any) -> tuple[list[str], dict[str, str]]:
    """The metadata folders of the matrix's installed packages, and where their import names resolve now."""
    from .._fastpath import module_origins
    from .importnames import import_names

    dirs: list[str] = []
    names: set[str] = set()
    for p in m.packages:
        dist = env.get(p.name)
        if dist is not None and dist.path:
            dirs.append(dist.path)
            names.update(import_names(dist.path))
    return sorted(dirs), module_origins(sorted(names)[:200], sys.path)


def certify_environment(matrix: str | os.PathLike[str] | Any = "llama31", tier: int = 2, device: str | None = None,
                        timeout: float | None = None, reporter: Reporter | None = None, keep_going: bool = False,
                        write: bool = True, extra_probes: tuple[str, ...] = (),
                        verify_files: bool = False) -> CertifyResult:
    """Certify this interpreter for `matrix` up to `tier` on `device` (the detected one by default).

    A certificate says CERTIFIED only when every rule of the check passes, every probe passed or skipped
    because it does not apply, and a CPU certificate is for a matrix that declares a CPU workload.
    `verify_files` also checks the matrix's installed packages' files against their RECORD hashes.
    """
    from .._env import gpu as _gpu
    from .._env.environment import inspect_environment
    from .._matrix.loader import load_matrix
    from .gpuid import current
    from .tier0 import check_result

    if not 0 <= tier <= 3:
        raise UsageError(f"--tier {tier}: tiers are 0 (the check), 1 (imports), 2 (GPU smoke), 3 (tiny training run)")
    if device not in (None, "cuda", "cpu"):
        raise UsageError(f"--device {device}: use cuda or cpu")
    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout {timeout}: a probe's time limit must be a positive number of seconds")
    start = time.monotonic()
    m: Any = matrix if hasattr(matrix, "probes") else load_matrix(os.fspath(matrix))
    gpu = _gpu.detect()
    has_gpu = gpu.available and gpu.kind == "cuda"
    if device == "cuda" and not has_gpu:
        raise UsageError(f"--device cuda: no CUDA GPU here ({gpu.reason or gpu.name}); use --device cpu")
    dev = device or ("cuda" if has_gpu else "cpu")
    report = reporter or (lambda r: None)

    env = inspect_environment(gpu=gpu)
    planned, facts = _validated(m, plan(m, tier, tuple(extra_probes)), env)
    not_run = tuple(p.name for p in planned if dev == "cpu" and (registry.get(p.name) or _NONE).gpu == "required")
    results: list[ProbeResult] = []
    for res in check_result(m, env, dev, not_run)[:2]:
        results.append(res)
        report(res)
    checked, origins = _checked(m, env)
    if verify_files:
        results.append(_files_result(checked))
        report(results[-1])
    ctx_common: dict[str, Any] = dict(device=dev, matrix={**_matrix_context(m), **facts}, gpu=gpu.to_dict(),
                                      workdir="")
    for p in planned:
        # the device result does not block: on the CPU the probes still show what runs, without certifying
        blocked = [r for r in results if r.tier < p.tier and not r.status.ok and r.name != "device"]
        spec = registry.get(p.name)
        assert spec is not None  # _validated refused unknown names
        if blocked and not keep_going:
            res = ProbeResult(p.name, p.tier, SKIPPED, f"not run: {blocked[0].name} (tier {blocked[0].tier}) did not pass")
        elif spec.gpu == "required" and dev == "cpu":
            res = ProbeResult(p.name, p.tier, SKIPPED, "skipped: no GPU" if not has_gpu else "skipped: --device cpu")
        elif spec.gpu == "optional" and dev == "cpu" and p.params.get("allow_cpu", True) is False:
            res = ProbeResult(p.name, p.tier, SKIPPED, "skipped: the matrix does not allow it on the CPU")
        else:
            res = run_probe(spec, p.tier, ProbeContext(params=p.params, **ctx_common), timeout=timeout)
        results.append(res)
        report(res)
    certified = all(r.status.ok for r in results)
    body = {
        "schema_version": store.CERT_SCHEMA_VERSION,
        "envdoctor": _version.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "certified": certified,
        "tier": tier,
        "device": dev,
        "scope": {"device": dev, "cpu_only": dev == "cpu", "not_run": list(not_run)},
        "matrix": {"name": m.name, "version": m.version, "ref": m.ref, "files": _matrix_files(m)},
        "environment": {
            "prefix": sys.prefix, "executable": sys.executable, "python": python_id(),
            "fingerprint": fingerprint(), "tokens": distribution_tokens(), "dirs": dir_tokens(),
            "distributions": sorted(([d.name, d.raw_version] for d in env.distributions.values()),
                                    key=lambda nv: nv[0].lower()),
            "checked": checked, "imports": origins,
        },
        "gpu": _gpu_record(gpu, current()) if dev == "cuda" else None,
        "probes": [r.to_dict() for r in results],
    }
    path = cert = None
    if write:
        path = store.write(body, store.cert_path(m.source, tier=tier, device=dev))
        cert, _ = store.read(path)
    check_ok = all(r.status == PASS for r in results if r.name == "check")
    return CertifyResult(m.ref, tier, dev, gpu.to_dict(), tuple(results), certified, check_ok, cert,
                         path, round(time.monotonic() - start, 2))


_NONE = registry.ProbeSpec("", 0, "")


def _files_result(checked: list[str]) -> ProbeResult:
    """Tier 0 `files`: the matrix's installed packages against their RECORD hashes (certify --verify-files)."""
    from .verify import describe, verify_distributions

    begin = time.monotonic()
    changed = verify_distributions(checked)
    took = round(time.monotonic() - begin, 2)
    if changed:
        return ProbeResult("files", 0, FAIL, describe(changed), took, {"changed": changed})
    return ProbeResult("files", 0, PASS, f"{len(checked)} distribution(s) match their RECORD hashes", took)


def _gpu_record(gpu: Any, ident: Any) -> dict[str, Any]:
    d = gpu.to_dict()
    # the guard compares against /proc when it can: record the driver as that source reads it, if it differs
    if ident.present and ident.driver_version:
        d["driver_version"] = ident.driver_version
    return {k: d.get(k) for k in ("name", "uuid", "compute_capability", "driver_version", "cuda_driver_version",
                                  "memory_gib", "count", "source")}
