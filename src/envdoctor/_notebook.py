"""IPython extension: `%load_ext envdoctor` gives `%envdoctor check` and `%envdoctor fix`, rendered as HTML in the cell.

`%envdoctor fix` shows the plan, then one progress row per step that updates in place, then the result.
In the kernel itself, restart detection sees the kernel's own `sys.modules`: a changed package that the
notebook already imported makes the result say "restart required"; `--restart` then restarts the kernel
(Colab starts a fresh runtime) and `%envdoctor fix --resume` verifies afterwards.
"""

from __future__ import annotations

import html
import shlex
from typing import Any

from ._fix.plan import Plan, Step

_STATUS_COLOUR = {"ok": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "skip": "#6e7781"}
_STYLE = "font-family:var(--jp-code-font-family,monospace);font-size:12px;border-collapse:collapse"


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


class Cell:
    """One output area of the running cell that can be replaced in place (IPython display_id)."""

    def __init__(self) -> None:
        from IPython.display import HTML, display

        self._html = HTML
        self._handle = display(HTML(""), display_id=True)

    def update(self, markup: str) -> None:
        self._handle.update(self._html(markup))


def report_html(report: Any) -> str:
    """A check report as an HTML table: status, subject, message, fix; failures first."""
    rows = []
    for f in report.findings:
        status = getattr(f.status, "value", str(f.status))
        colour = _STATUS_COLOUR.get(status, "inherit")
        rows.append(f'<tr><td style="color:{colour};font-weight:bold">{_e(status.upper())}</td>'
                    f"<td>{_e(f.subject)}</td><td>{_e(f.message)}</td><td><code>{_e(f.fix or '')}</code></td></tr>")
    head = (f"<b>envdoctor check</b> {_e(report.matrix)} &middot; Python {_e(report.python)} &middot; "
            f"<code>{_e(report.executable)}</code>")
    verdict = "all good" if report.ok else f"{len(report.problems)} problem(s)"
    return (f"<div>{head}<br>{_e(verdict)}<table style='{_STYLE}'><tr><th>status</th><th>what</th>"
            f"<th>finding</th><th>fix</th></tr>{''.join(rows)}</table></div>")


def plan_html(plan: Plan) -> str:
    """A fix plan as HTML: the changes, then each step with its exact command, then problems and warnings."""
    changes = "".join(f"<tr><td>{_e(c.name)}</td><td>{_e(c.before or '(absent)')}</td>"
                      f"<td>{_e(c.after or '(removed)')}</td></tr>" for c in plan.changes)
    steps = "".join(f"<li>{_e(s.title)}: <code>{_e(' '.join(s.packages))}</code><br>"
                    f"<code style='color:#6e7781'>$ {_e(' '.join(s.command))}</code></li>" for s in plan.steps)
    notes = "".join(f"<div style='color:#9a6700'>warning: {_e(w)}</div>" for w in plan.warnings)
    notes += "".join(f"<div style='color:#cf222e'>refused: {_e(p)}</div>" for p in plan.problems)
    body = (f"<table style='{_STYLE}'><tr><th>package</th><th>before</th><th>after</th></tr>{changes}</table>"
            if changes else "<div>nothing to change</div>")
    return (f"<div><b>envdoctor fix</b> {_e(plan.target)} &rarr; <code>{_e(plan.python)}</code> "
            f"(resolved by {_e(plan.backend)} in {plan.seconds:.1f} s){body}<ol>{steps}</ol>{notes}</div>")


class NotebookReporter:
    """Progress rows, one per step, redrawn in place in one output area."""

    def __init__(self, cell: Cell, steps: tuple[Step, ...]) -> None:
        self.cell = cell
        self.rows = [["pending", s.title + ": " + " ".join(s.packages), ""] for s in steps]
        self.notes: list[str] = []

    def _draw(self) -> None:
        icons = {"pending": "&#9675;", "running": "&#9203;", "done": "&#10004;", "failed": "&#10008;"}
        rows = "".join(f"<tr><td>{icons[state]}</td><td>{_e(title)}</td><td style='color:#6e7781'>{_e(last)}</td></tr>"
                       for state, title, last in self.rows)
        notes = "".join(f"<div>{_e(n)}</div>" for n in self.notes)
        self.cell.update(f"<table style='{_STYLE}'>{rows}</table>{notes}")

    def start(self, index: int, total: int, step: Step) -> None:
        self.rows[index][0] = "running"
        self._draw()

    def line(self, text: str) -> None:
        for row in self.rows:
            if row[0] == "running" and text.strip():
                row[2] = text.strip()[:80]
                self._draw()

    def finish(self, index: int, ok: bool) -> None:
        self.rows[index][0] = "done" if ok else "failed"
        self._draw()

    def note(self, text: str) -> None:
        self.notes.append(text)
        self._draw()


def result_html(result: Any) -> str:
    """The outcome of an apply as HTML (the text rendering, kept readable)."""
    from ._render.fix import result_text

    colour = "#1a7f37" if result.ok and not result.stale else ("#9a6700" if result.ok else "#cf222e")
    return f"<pre style='color:{colour}'>{_e(result_text(result))}</pre>"


def _renders_html() -> bool:
    """True in a notebook front end; False in terminal IPython, whose display shows text/plain only."""
    from IPython import get_ipython

    ip = get_ipython()
    return ip is None or "text/html" in getattr(ip.display_formatter, "active_types", ["text/html"])


def envdoctor_magic(line: str) -> None:
    """`%envdoctor check [...]` or `%envdoctor fix [...]`: the CLI's options, HTML in the cell."""
    from ._cli import build_parser
    from .errors import EnvDoctorError

    if not _renders_html():
        # Terminal IPython shows only text/plain: HTML would print '<IPython.core.display.HTML object>'.
        from ._cli import main

        try:
            main(shlex.split(line))
        except SystemExit:
            pass  # argparse already printed the usage line
        return None
    try:
        args = build_parser().parse_args(shlex.split(line))
    except SystemExit:
        return None  # argparse already printed the usage line into the cell
    try:
        if args.command == "check":
            from ._api import check
            from ._fix.recover import interrupted_notice
            from ._matrix.loader import DEFAULT_MATRIX

            report = check(args.matrix or DEFAULT_MATRIX, model=args.model, gpu=args.gpu, python=args.python)
            notice = interrupted_notice(report.executable)  # a killed fix's journal is said above the table
            Cell().update((f"<div style='color:#cf222e'>warning: {_e(notice)}</div>" if notice else "")
                          + report_html(report))
        elif args.command == "fix":
            _fix(args)
        else:
            print(f"%envdoctor supports check and fix; run !envdoctor {args.command} in a shell cell")
    except EnvDoctorError as e:
        Cell().update(f"<div style='color:#cf222e'>envdoctor: error: {_e(e)}</div>")
    return None


def _fix(args: Any) -> None:
    from ._cli.fix import fix_request
    from ._fix.session import FixSession

    if args.rollback:
        from ._fix.recover import roll_back
        from ._render.fix import recovered_text

        Cell().update(f"<pre>{_e(recovered_text(roll_back(python=args.python)))}</pre>")
        return
    if args.resume:
        from ._fix.resume import resume
        from ._render.fix import resumed_text

        resumed = resume(python=args.python)
        Cell().update(result_html(resumed.result) if resumed.result is not None
                      else f"<pre>{_e(resumed_text(resumed))}</pre>")
        return

    def show_and_apply(plan: Plan) -> bool:
        Cell().update(plan_html(plan))
        return True  # the magic line is the confirmation: %envdoctor fix --dry-run only shows the plan

    session = FixSession(fix_request(args), confirm=show_and_apply,
                         reporter=lambda plan: NotebookReporter(Cell(), plan.steps))
    done = session.run()
    if done.result is None:
        Cell().update(plan_html(done.plan))
        return
    Cell().update(result_html(done.result))
    session.finish(done)


def load_ipython_extension(ipython: Any) -> None:
    """Register `%envdoctor` (called by `%load_ext envdoctor` through envdoctor.load_ipython_extension)."""
    ipython.register_magic_function(envdoctor_magic, magic_kind="line", magic_name="envdoctor")
