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

# command -> (the module in envdoctor._cli that registers it, its one-line help). The top-level help and
# the command list are written from this table, so `envdoctor`, `--help` and `--version` import no command
# module (the trainer's pydantic config alone costs ~90 ms); tests/cli/test_funnel.py keeps the helps equal
# to what each module registers. Each module exposes register(subparsers), heavy imports inside handlers.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("check", "check the environment and GPU against a matrix"),
    "matrix": ("matrix", "list, show, validate, diff, freeze matrices; print their JSON Schema"),
    "fix": ("fix", "resolve, plan and apply a matrix, with rollback"),
    "lint": ("lint", "find (and --fix) stale transformers/TRL keywords in scripts and notebooks"),
    "explain": ("explain", "explain an error message, traceback or log"),
    "certify": ("certify", "run the probes in tiers and write a certificate that envdoctor.guard() accepts"),
    "lock": ("lock", "write this environment as a PEP 751 pylock.toml (or a hashed requirements file)"),
    "train": ("train", "fine-tune with the bundled QLoRA/GaLore trainer (certified environments only)"),
    "plan-memory": ("train", "estimate peak GPU memory of a QLoRA/GaLore run and the plan that fits"),
    "mcp": ("mcp", "serve the read-only commands to coding assistants over MCP (stdio)"),
}
MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))

DESCRIPTION = ("Check, fix, certify and explain LLM fine-tuning environments "
               "(torch, transformers, peft, bitsandbytes, trl) against versioned compatibility matrices.")
EPILOG = """\
examples:
  envdoctor check                          check this environment against the default matrix (llama31)
  envdoctor check --matrix llama31@2024.12 --gpu t4 --model path/to/config.json
  envdoctor matrix list                    the bundled matrices and their versions
  envdoctor fix --matrix llama31 --dry-run the plan, with the exact pip commands, changing nothing
  envdoctor explain error.log              what a traceback means and how to fix it
  envdoctor certify --tier 2               run the GPU probes and write a certificate
  envdoctor lock                           this environment as pylock.toml, with hashes

exit codes: 0 all good, 1 problems found, 2 bad input or usage, 3 restart required
"""
_TOP_LEVEL = ("-h", "--help", "--version")


def _command_word(argv: Sequence[str]) -> str | None:
    """The command named on the command line, or None when a top-level option comes first (the top-level
    parser has no option that takes a value, so the first word that is not an option is the command)."""
    for arg in argv:
        if arg in _TOP_LEVEL:
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(modules: Sequence[str] = MODULES) -> argparse.ArgumentParser:
    """The argument parser, with the real subcommands of the given modules in envdoctor._cli and, for every
    other command in COMMANDS, a placeholder that only lists it (its module is not imported)."""
    parser = argparse.ArgumentParser(prog="envdoctor", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"envdoctor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered: set[str] = set()
    for name in modules:
        try:
            module = importlib.import_module(f"envdoctor._cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"envdoctor._cli.{name}":
                registered.update(c for c, (m, _) in COMMANDS.items() if m == name)
                continue  # a command still being written is simply not offered
            raise
        module.register(sub)
        registered.update(sub.choices)
    for command, (_, help_) in COMMANDS.items():
        if command not in registered:
            sub.add_parser(command, help=help_, add_help=False)
    return parser


def short_usage() -> str:
    """What `envdoctor` with no arguments prints (on stderr): the usage line and the commands."""
    width = max(map(len, COMMANDS)) + 2
    lines = ["usage: envdoctor [-h] [--version] COMMAND ...", "", DESCRIPTION, "", "commands:"]
    lines += [f"  {name:<{width}}{help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`envdoctor COMMAND --help` for a command's options; `envdoctor --help` for examples and exit codes"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        # uv's convention (clap's arg_required_else_help): no command is a usage error, so the command list
        # goes to stderr and the exit code is 2; stdout stays empty for pipes. `--help` prints to stdout, 0.
        sys.stderr.write(short_usage())
        return 2
    command = _command_word(argv)
    parser = build_parser((COMMANDS[command][0],) if command in COMMANDS else ())
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_usage(sys.stderr)
        return 2
    from .._status import Terminal, reporting

    try:
        with reporting(Terminal(sys.stderr)):  # a resolution shows what it resolves and for how long, on stderr
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
