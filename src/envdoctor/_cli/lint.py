"""`envdoctor lint`: stale transformers/TRL keywords in scripts and notebooks, all at once; --fix rewrites them."""

from __future__ import annotations

import argparse
import sys

HELP = """\
Find every keyword in .py scripts and .ipynb notebooks that the installed transformers/TRL (or the
versions a matrix pins, with --matrix) renamed, moved or removed: file, line, old -> new, and why.
Keywords whose default changed silently are listed as info. --fix rewrites the source with LibCST
(formatting and comments kept), moves SFTTrainer keywords into the SFTConfig passed as args= when
that is safe, and lists what it could not fix.

examples:
  envdoctor lint train.py
  envdoctor lint notebooks/ scripts/train_qlora.py
  envdoctor lint --matrix llama31@2024.12 train.py     judge against the versions the matrix pins
  envdoctor lint --fix train.py                         needs `pip install 'envdoctor[lint]'`
  envdoctor lint --format json train.py
  envdoctor lint --format sarif . > lint.sarif          for GitHub code scanning (docs/ci.md)

exit codes: 0 clean, 1 stale keywords found (or left unfixed), 2 bad input or usage
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `lint` subcommand."""
    p = sub.add_parser("lint", help="find (and --fix) stale transformers/TRL keywords in scripts and notebooks",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help=".py files, .ipynb notebooks or folders")
    p.add_argument("--fix", action="store_true", help="rewrite the files in place (LibCST)")
    p.add_argument("--matrix", "-m", default=None, metavar="M",
                   help="judge against the versions this matrix pins instead of the installed ones")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                   help="output format: text, json, or SARIF 2.1.0 for code scanning (default: text)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `envdoctor lint` and return its exit code."""
    from .._lint.engine import lint
    from .._matrix.loader import DEFAULT_MATRIX, load_matrix
    from .._render.lint import render_json, render_text
    from .._render.sarif import render_sarif

    matrix = load_matrix(args.matrix or DEFAULT_MATRIX)
    result = lint(args.paths, matrix, use_pins=args.matrix is not None, fix=args.fix)
    render = {"json": render_json, "sarif": render_sarif}.get(args.format, render_text)
    sys.stdout.write(render(result))
    return result.exit_code
