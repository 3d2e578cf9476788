"""`envdoctor fix`: resolve the target first, show the plan, apply it with progress, roll back on failure."""

from __future__ import annotations

import argparse
import sys

HELP = """\
Bring an environment to a matrix (or a requirements file) and never leave it worse than it was.
The whole target is resolved first with a real resolver (uv when available, else pip) against what is
installed; if it cannot be satisfied nothing is touched. The plan lists the exact commands: removals,
install groups in the matrix's order (torch from its own index), --no-deps steps. Protected packages
(the matrix's, envdoctor's own dependencies, Colab's preinstalled stack) are never replaced unless
--allow names them. Before the first step the installed set is snapshotted; if any step fails the
snapshot is restored and verified with pip freeze.

examples:
  envdoctor fix --dry-run                          the plan for the default matrix, changing nothing
  envdoctor fix --matrix colab-axolotl --yes       the Colab procedure: cleanup, ordered install, verify
  envdoctor fix -r requirements.txt --python .venv/bin/python   fix a project venv from here
  envdoctor fix --dry-run --format json            the plan as JSON
  envdoctor fix --resume                           continue after a kernel restart

torch's CUDA index: matrices name it `pytorch:<tag>`; set ENVDOCTOR_PYTORCH_INDEX to its URL with a
{tag} placeholder. Other indexes come from pip's own configuration (or --index-url/--find-links).

exit codes: 0 done (or nothing to do), 1 refused or failed (rolled back), 2 bad input or usage,
3 done but restart required (modules already imported were changed)
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("fix", help="resolve, plan and apply a matrix, with rollback",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--matrix", "-m", metavar="M", help="matrix: name, name@version or a .toml path (default: llama31)")
    what.add_argument("-r", "--requirements", metavar="FILE", help="a requirements file as the target")
    p.add_argument("--python", metavar="PATH", help="fix another interpreter's environment (e.g. a project venv)")
    p.add_argument("--dry-run", action="store_true", help="show the plan and change nothing")
    p.add_argument("--yes", "-y", action="store_true", help="apply without asking")
    p.add_argument("--backend", choices=("auto", "pip", "uv"), default="auto", help="resolver and installer (default: auto)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    p.add_argument("--allow", action="append", default=[], metavar="NAME",
                   help="allow replacing this protected package (repeatable)")
    p.add_argument("--allow-broken", action="store_true",
                   help="apply even if another installed package's requirement would break (listed as warnings)")
    p.add_argument("--index-url", metavar="URL", help="package index (default: pip's configuration)")
    p.add_argument("--extra-index-url", action="append", default=[], metavar="URL", help="extra index (repeatable)")
    p.add_argument("--find-links", action="append", default=[], metavar="DIR", help="a folder of wheels (repeatable)")
    p.add_argument("--no-index", action="store_true", help="use only --find-links folders")
    p.add_argument("--no-import-check", action="store_true",
                   help="do not import the changed packages to verify the fix (they are imported by default)")
    p.add_argument("--restart", action="store_true",
                   help="in Jupyter/Colab: restart the kernel when the fix changed imported packages")
    p.add_argument("--resume", action="store_true", help="continue a fix interrupted by a kernel restart")
    p.set_defaults(func=run)


def _sources(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import os

    from .._resolver import Sources

    links = tuple(os.path.abspath(f) if os.path.isdir(f) else f for f in args.find_links)
    return Sources(args.index_url, tuple(args.extra_index_url), links, args.no_index)


def run(args: argparse.Namespace) -> int:
    from .._fix import apply_plan, load_target, plan_fix
    from .._render.fix import plan_json, plan_text, result_text

    if args.resume:
        from .._fix.resume import resume

        result_or_code = resume(python=args.python, reporter=_reporter(args))
        if isinstance(result_or_code, str):
            print(result_or_code)
            return 0
        sys.stdout.write((plan_json(result_or_code.plan, result_or_code) if args.format == "json"
                          else result_text(result_or_code)) + "\n")
        return result_or_code.exit_code
    target = load_target(args.matrix, args.requirements)
    plan = plan_fix(target, python=args.python, backend=args.backend, allow=args.allow,
                    allow_broken=args.allow_broken, sources=_sources(args))
    if args.dry_run or not plan.ok or plan.noop:
        sys.stdout.write((plan_json(plan) if args.format == "json" else plan_text(plan)) + "\n")
        return 0 if plan.ok else 1
    if args.format == "text":
        print(plan_text(plan), file=sys.stderr)
    if not args.yes and sys.stdin.isatty() and sys.stderr.isatty():
        answer = input("apply this plan? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing was changed", file=sys.stderr)
            return 1
    reporter = _reporter(args)
    try:
        result = apply_plan(plan, target, reporter=reporter, verify_imports=not args.no_import_check)
    finally:
        close = getattr(reporter, "close", None)
        if close:
            close()
    sys.stdout.write((plan_json(plan, result) if args.format == "json" else result_text(result)) + "\n")
    if result.ok and args.restart:
        from .._fix.resume import restart_kernel

        print(restart_kernel(plan, result), file=sys.stderr)
    return result.exit_code


def _reporter(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .._fix.progress import ConsoleReporter

    return ConsoleReporter(sys.stderr, quiet=args.format == "json")
