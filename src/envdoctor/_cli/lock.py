"""`envdoctor lock`: this environment (or another one) as a PEP 751 pylock.toml or a hashed requirements file."""

from __future__ import annotations

import argparse
import os
import sys

HELP = """\
Write the installed environment as a lock: PEP 751 pylock.toml (uv pip sync and pip 26 install it) or,
with --format requirements, a requirements file for pip --require-hashes. URLs and hashes come from
what the installer recorded (direct URLs) and otherwise from the configured index, for this
interpreter's platform. [tool.envdoctor] records the matrix and, when the environment is certified,
the certificate's tier and GPU. pip, setuptools and wheel are left out, as pip freeze does (--all).

examples:
  envdoctor lock                                   ./pylock.toml for this environment
  envdoctor lock --python .venv/bin/python -o -    another venv, on stdout
  envdoctor lock --format requirements -o requirements.lock.txt
  uv pip sync pylock.toml                          recreate the environment elsewhere

exit codes: 0 every distribution locked, 1 some could not be (listed), 2 bad input or usage
"""
DEFAULT_OUTPUT = {"pylock": "pylock.toml", "requirements": "requirements.lock.txt"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `lock` subcommand."""
    p = sub.add_parser("lock", help="write this environment as a PEP 751 pylock.toml (or a hashed requirements file)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", "-o", metavar="FILE",
                   help="where to write ('-' for stdout; default: pylock.toml, or requirements.lock.txt)")
    p.add_argument("--python", metavar="PATH", help="lock another interpreter (or venv folder) instead of this one")
    p.add_argument("--format", choices=("pylock", "requirements"), default="pylock", help="lock format (default: pylock)")
    p.add_argument("--matrix", "-m", default=None, metavar="M",
                   help="the matrix to record, with its certificate when certified (default: llama31)")
    p.add_argument("--all", action="store_true", help="keep pip, setuptools, wheel and distribute")
    p.set_defaults(func=run)


def _write(path: str, text: str) -> None:
    """Write atomically: a reader never sees half a lock."""
    tmp = f"{path}.envdoctor-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    """Run `envdoctor lock` and return its exit code."""
    from .._lock import lock_environment
    from .._lock.validate import validate_pylock
    from .._matrix.loader import DEFAULT_MATRIX, load_matrix
    from .._render.lock import render_pylock, render_requirements, render_summary

    matrix = load_matrix(args.matrix or DEFAULT_MATRIX)
    lock = lock_environment(args.python, matrix=matrix.ref, include_installers=args.all)
    if args.format == "pylock":
        text = render_pylock(lock)
        validate_pylock(text)
    else:
        text = render_requirements(lock)
    output = args.output or DEFAULT_OUTPUT[args.format]
    if output == "-":
        sys.stdout.write(text)
    else:
        _write(output, text)
    sys.stderr.write(render_summary(lock, None if output == "-" else output))
    if args.format == "requirements" and lock.unhashable:
        print(f"  not hashable, commented out: {', '.join(p.name for p in lock.unhashable)}", file=sys.stderr)
        return 1
    return lock.exit_code
