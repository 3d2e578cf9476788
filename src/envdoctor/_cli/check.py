"""`envdoctor check`: the environment against a matrix, as a table or JSON."""

from __future__ import annotations

import argparse
import os
import sys

HELP = """\
Check this Python environment (or another one with --python) and its GPU against a compatibility
matrix, without importing torch. Every problem is reported at once, ordered by root cause, each with
the rule's reason, its evidence and the fix.

examples:
  envdoctor check                              the default matrix (llama31, newest version)
  envdoctor check --matrix llama31@2024.12     one version of a matrix
  envdoctor check --matrix ./mystack.toml      your own matrix (it may `extends = "llama31"`)
  envdoctor check --gpu t4                     check GPU rules against a declared T4 instead of this machine's GPU
  envdoctor check --model ./Llama-3.1-8B/config.json   the transformers release its model type needs,
                                               its features (rope, quantization, attention, bf16),
                                               against its family matrix (qwen, gemma, ...)
  envdoctor check --python .venv/bin/python    another interpreter, e.g. a project venv
  envdoctor check --format json | jq .findings

exit codes: 0 all good, 1 problems found, 2 bad input or usage
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("check", help="check the environment and GPU against a matrix",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--matrix", "-m", default=None, metavar="M",
                   help="matrix: name (newest version), name@version, or a path to a .toml (default: the --model's family "
                        "matrix, else llama31)")
    p.add_argument("--model", metavar="CONFIG", help="a model's config.json (or its folder): check what it needs")
    p.add_argument("--gpu", metavar="TARGET",
                   help="check against a declared GPU: none, t4, a10g, l4, a100-40gb, a100-80gb, h100-80gb, h200, mps, ...")
    p.add_argument("--python", metavar="PATH", help="inspect another interpreter (or venv folder) instead of this one")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    p.add_argument("--verbose", "-v", action="store_true", help="list passing checks too")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._api import check

    report = check(args.matrix, model=args.model, gpu=args.gpu, python=args.python)
    if args.format == "json":
        from .._render.check_json import render as render_json

        sys.stdout.write(render_json(report))
    else:
        from .._render.check_text import render as render_text

        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        sys.stdout.write(render_text(report, color=color, verbose=args.verbose))
    # A killed fix's journal: say so, and never report "all good" over a half-changed environment.
    from .._fastpath import journal_may_exist

    notice = None
    if journal_may_exist(report.executable):  # one stat; the fix machinery loads only when a journal is there
        from .._fix.recover import interrupted_notice

        notice = interrupted_notice(report.executable)
    if notice:
        print(f"envdoctor: warning: {notice}", file=sys.stderr)
    return max(report.exit_code, 1) if notice else report.exit_code
