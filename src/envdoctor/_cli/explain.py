"""`envdoctor explain`: what an error message, traceback or log means, how to fix it, and whether it applies here."""

from __future__ import annotations

import argparse
import sys

HELP = """\
Read an error message, a traceback or a whole log (a file, or stdin with `-`) and print, for every
known symptom in it: the cause, the fix (the exact edit or command), and whether this environment
has the cause (from the installed versions and the GPU; torch is never imported).

examples:
  envdoctor explain error.log
  python train.py 2>&1 | envdoctor explain -
  envdoctor explain - <<< "TypeError: SFTTrainer.__init__() got an unexpected keyword argument 'max_seq_length'"
  envdoctor explain --format json error.log

In code: envdoctor.explain(exc), and envdoctor.install_excepthook() (also for IPython/Colab).

exit codes: 0 something recognised, 1 nothing recognised, 2 bad input or usage
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `explain` subcommand."""
    p = sub.add_parser("explain", help="explain an error message, traceback or log",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="the text to explain (default: stdin)")
    p.add_argument("--matrix", "-m", default=None, metavar="M",
                   help="matrix whose symptoms to use: name, name@version or path (default: llama31)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    p.set_defaults(func=run)


def _read(name: str) -> str:
    from ..errors import UsageError

    if name == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("explain: give a FILE, or pipe the error text into `envdoctor explain -`")
        return sys.stdin.read()
    try:
        with open(name, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"explain: cannot read {name}: {e.strerror or e}") from e


def run(args: argparse.Namespace) -> int:
    """Run `envdoctor explain` and return its exit code."""
    from .._drift.explain import explain
    from .._render.explain import render_json, render_text

    text = _read(args.file)
    explanation = explain(text, matrix=args.matrix)
    for warning in explanation.skipped:
        print(f"envdoctor: warning: {warning}", file=sys.stderr)
    sys.stdout.write(render_json(explanation) if args.format == "json" else render_text(explanation))
    return explanation.exit_code
