"""The check report as a plain-text table a person reads at a glance (no rich: this is the hot path)."""

from __future__ import annotations

from dataclasses import fields

from .._check.findings import Finding, Kind, Report, Status

_MARK = {Status.OK: "ok", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "skip"}
_COLOR = {Status.OK: "32", Status.WARN: "33", Status.FAIL: "31;1", Status.SKIP: "2"}


def _paint(text: str, status: Status, color: bool) -> str:
    return f"\x1b[{_COLOR[status]}m{text}\x1b[0m" if color else text


def _row(f: Finding, color: bool, width: int, common_fix: str) -> list[str]:
    mark = _paint(f"{_MARK[f.status]:<4}", f.status, color)
    lines = [f"  {mark}  {f.kind.value:<{width}}  {f.message}"]
    pad = " " * (10 + width)
    if f.status in (Status.FAIL, Status.WARN):
        if f.reason:
            lines.append(f"{pad}why: {f.reason}")
        if f.evidence:
            lines.append(f"{pad}evidence: {f.evidence[0]}" + (f" (+{len(f.evidence) - 1} more)" if len(f.evidence) > 1 else ""))
        if f.fix and f.fix != common_fix:  # the matrix-wide fix is said once, under the table
            lines.append(f"{pad}fix: {f.fix}")
    return lines


def render(report: Report, *, color: bool = False, verbose: bool = False) -> str:
    """The report as text. Problems first within each root cause; passing rules are listed compactly (all of them with verbose)."""
    gpu = report.gpu
    cc = f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}" if gpu.compute_capability else None
    gpu_line = (f"{gpu.name}, {round(gpu.memory_gib, 2):.0f} GiB, cc {cc}, driver {gpu.driver_version or '?'} "
                f"(CUDA {gpu.cuda_driver_version or '?'}) [{gpu.source}]"
                if gpu.available and gpu.kind == "cuda"
                else (gpu.name or "none") + (f" ({gpu.reason})" if gpu.reason else ""))
    rt = [f.name for f in fields(report.runtime) if getattr(report.runtime, f.name) and f.name != "virtualenv"]
    out = [
        f"envdoctor check: {report.matrix}" + (f" [{report.matrix_status}]" if report.matrix_status != "current" else ""),
        f"  python  {report.python}  {report.executable}" + (f"  ({', '.join(rt)})" if rt else ""),
        f"  gpu     {gpu_line}",
        f"  tools   pip {report.tools.get('pip') or 'not installed'}, uv {report.tools.get('uv') or 'not found'}",
    ]
    if report.model is not None:
        archs = f" [{', '.join(report.model.architectures)}]" if report.model.architectures else ""
        out.append(f"  model   {', '.join(report.model.model_types)}{archs}")
    out.append("")
    # Passing package, Python and model rules stay visible: they are what a person checks at a glance.
    listed = ("package", "python", "model", "certificate")
    shown = [f for f in report.findings if verbose or f.status is not Status.OK or f.kind.value in listed]
    width = max((len(f.kind.value) for f in shown), default=7)
    # a Python the matrix rejects: fix would refuse, so every row's hint is what would work instead, said once
    python_fix = next((f.fix for f in report.problems if f.kind is Kind.PYTHON and f.fix), None)
    common_fix = python_fix or f"envdoctor fix --matrix {report.command_ref or report.matrix}"
    for f in shown:
        out.extend(_row(f, color, width, common_fix))
    hidden = len(report.findings) - len(shown)
    n_fail, n_warn = report.count(Status.FAIL), report.count(Status.WARN)
    summary = f"{report.count(Status.OK)} ok, {n_warn} warning(s), {n_fail} problem(s)"
    if hidden:
        summary += f"; {hidden} passing check(s) not shown (--verbose)"
    out += ["", ("OK: " if report.ok else "PROBLEMS: ") + summary]
    if python_fix is not None:
        out.append(f"this Python: {python_fix}")
    elif any(f.fix == common_fix for f in report.problems):
        out.append(f"to fix the packages: {common_fix} --dry-run (shows the plan), then without --dry-run")
    return "\n".join(out) + "\n"
