"""`envdoctor fix`: resolve the target first, show the plan, apply it with progress, roll back on failure."""

from __future__ import annotations

import argparse
import errno
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._fix.plan import Plan
    from .._fix.progress import ConsoleReporter
    from .._fix.session import FixRequest

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
  envdoctor fix --rollback --python .venv/bin/python   undo a fix that was killed midway (offline)

torch's CUDA index: matrices name it `pytorch:<tag>`; set ENVDOCTOR_PYTORCH_INDEX to its URL with a
{tag} placeholder. Other indexes come from pip's own configuration (or --index-url/--find-links).

A fix keeps a journal (<prefix>/.envdoctor/fix-state.json) from before its first change to its end; SIGTERM
and SIGHUP roll back like Ctrl-C. If a fix is killed outright, check and fix report it, and a new fix
refuses to start until `envdoctor fix --rollback` (or --resume) has repaired the environment.

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
    p.add_argument("--protect", action="append", default=[], metavar="NAME",
                   help="never change this installed package, whatever the target says (repeatable)")
    p.add_argument("--allow-broken", action="store_true",
                   help="apply even if another installed package's requirement would break (listed as warnings)")
    p.add_argument("--index-url", metavar="URL", help="package index (default: pip's configuration)")
    p.add_argument("--extra-index-url", action="append", default=[], metavar="URL", help="extra index (repeatable)")
    p.add_argument("--find-links", action="append", default=[], metavar="DIR", help="a folder of wheels (repeatable)")
    p.add_argument("--no-index", action="store_true", help="use only --find-links folders")
    p.add_argument("--trust-sources", action="store_true",
                   help="use the https indexes and URLs a matrix that is not bundled names (others: list them in "
                        "~/.config/envdoctor/trusted-sources.txt); without it they are previewed from wheels only")
    p.add_argument("--no-import-check", action="store_true",
                   help="do not import the changed packages to verify the fix (they are imported by default)")
    p.add_argument("--restart", action="store_true",
                   help="in Jupyter/Colab: restart the kernel when the fix changed imported packages")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted fix (after a kernel restart, or a fix that was killed)")
    p.add_argument("--rollback", action="store_true",
                   help="restore the state before the interrupted fix (or the last one) and verify it with pip freeze")
    p.set_defaults(func=run)


def fix_request(args: argparse.Namespace) -> FixRequest:
    """The one reading of fix's parsed options (`%envdoctor fix` parses the same ones)."""
    from .._fix.session import FixRequest, sources_from

    return FixRequest(
        matrix=args.matrix, requirements=args.requirements, python=args.python, backend=args.backend,
        allow=tuple(args.allow), allow_broken=args.allow_broken, protect=tuple(args.protect),
        sources=sources_from(args.index_url, args.extra_index_url, args.find_links, args.no_index),
        dry_run=args.dry_run, verify_imports=not args.no_import_check, restart=args.restart,
        trust_sources=getattr(args, "trust_sources", False),
    )


def run(args: argparse.Namespace) -> int:
    from .._fix.signals import interruptible

    try:
        with interruptible():  # SIGTERM/SIGHUP while planning stop the resolver too, like Ctrl-C
            return _run(args)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        from ..errors import FixError

        raise FixError(f"disk full: {e.filename or 'a write'} failed ({e.strerror}); free some space and run "
                       f"envdoctor check") from e


def _run(args: argparse.Namespace) -> int:
    from .._fix.session import FixSession, Outcome
    from .._render.fix import plan_json, plan_text, result_text

    if args.resume:
        return _resume(args)
    if args.rollback:
        return _rollback(args)
    json_out = args.format == "json"

    def confirm(plan: Plan) -> bool:
        if not json_out:
            print(plan_text(plan), file=sys.stderr)
        if args.yes:
            return True
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            # No one can answer (a pipe, `!envdoctor fix` in a notebook, CI): asking is not agreeing.
            print("no terminal to ask on: pass --yes to apply this plan", file=sys.stderr)
            return False
        return input("apply this plan? [y/N] ").strip().lower() in ("y", "yes")

    session = FixSession(fix_request(args), confirm=confirm, reporter=lambda plan: _reporter(args))
    done = session.run()
    if done.outcome is Outcome.DECLINED:
        print("nothing was changed", file=sys.stderr)
    elif done.result is None:
        sys.stdout.write((plan_json(done.plan) if json_out else plan_text(done.plan)) + "\n")
    else:
        sys.stdout.write((plan_json(done.plan, done.result) if json_out else result_text(done.result)) + "\n")
        message = session.finish(done)
        if message:
            print(message, file=sys.stderr)
    return done.exit_code


def _resume(args: argparse.Namespace) -> int:
    from .._fix.resume import resume
    from .._render.fix import plan_json, resumed_text

    resumed = resume(python=args.python, reporter=_reporter(args), trust_sources=getattr(args, "trust_sources", False))
    if resumed.result is not None and args.format == "json":
        sys.stdout.write(plan_json(resumed.plan, resumed.result) + "\n")
    else:
        sys.stdout.write(resumed_text(resumed) + "\n")
    return resumed.exit_code


def _rollback(args: argparse.Namespace) -> int:
    from .._fix.recover import roll_back
    from .._render.fix import recovered_json, recovered_text

    done = roll_back(python=args.python)
    sys.stdout.write((recovered_json(done) if args.format == "json" else recovered_text(done)) + "\n")
    return done.exit_code


def _reporter(args: argparse.Namespace) -> ConsoleReporter:
    from .._fix.progress import ConsoleReporter

    return ConsoleReporter(sys.stderr, quiet=args.format == "json")
