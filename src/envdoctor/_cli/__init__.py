"""The command line: a thin funnel that parses arguments, calls the library, prints, and maps errors to exit codes.

Exit codes: 0 all good, 1 problems found, 2 bad input or usage, 3 restart required.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import EnvDoctorError

# Each module in envdoctor._cli exposes register(subparsers) and keeps heavy imports inside its handlers.
COMMANDS = ("check", "matrix", "fix", "lint", "explain", "certify", "train")
# Subcommand name -> the module that registers it, where they differ.
_MODULE_OF = {"plan-memory": "train"}

EPILOG = """\
examples:
  envdoctor check                          check this environment against the default matrix (llama31)
  envdoctor check --matrix llama31@2024.12 --gpu t4 --model path/to/config.json
  envdoctor matrix list                    the bundled matrices and their versions
  envdoctor fix --matrix llama31 --dry-run the plan, with the exact pip commands, changing nothing
  envdoctor explain error.log              what a traceback means and how to fix it
  envdoctor certify --tier 2               run the GPU probes and write a certificate

exit codes: 0 all good, 1 problems found, 2 bad input or usage, 3 restart required
"""


def _wanted(argv: Sequence[str]) -> tuple[str, ...]:
    """The command modules to import: only the one named on the command line (so that `envdoctor check`
    never pays for the trainer's imports), or all of them for top-level help and unknown words."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None:
        return COMMANDS
    module = _MODULE_OF.get(first, first)
    return (module,) if module in COMMANDS else COMMANDS


def build_parser(modules: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The argument parser, with the subcommands of the given modules in envdoctor._cli."""
    parser = argparse.ArgumentParser(
        prog="envdoctor",
        description="Check, fix, certify and explain LLM fine-tuning environments "
        "(torch, transformers, peft, bitsandbytes, trl) against versioned compatibility matrices.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"envdoctor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(f"envdoctor._cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"envdoctor._cli.{name}":
                continue  # a command still being written is simply not offered
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_wanted(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except EnvDoctorError as e:
        print(f"envdoctor: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("envdoctor: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
