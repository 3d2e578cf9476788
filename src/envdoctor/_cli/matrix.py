"""`envdoctor matrix list|show|validate|diff|freeze|schema`: read, trust and write compatibility matrices."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

HELP = """\
Compatibility matrices: versioned TOML files of package rules, each with its reason and evidence.

examples:
  envdoctor matrix list                              bundled and user matrices, newest last
  envdoctor matrix show llama31@2024.12              one matrix, its rules and why
  envdoctor matrix validate llama31                  resolve it with a real resolver (uv, else pip)
  envdoctor matrix validate --all                    every bundled matrix (what CI runs)
  envdoctor matrix validate requirements.txt         a requirements file, for this interpreter, as pip would
  envdoctor matrix validate requirements.txt --allow-build   ... running its sdists' build backends, as pip does
  envdoctor matrix validate -r requirements.txt --python-version 3.12
  envdoctor matrix diff llama31@2024.06 llama31@2024.12   what moved, from what to what, and why
  envdoctor matrix freeze --name mystack > mystack.toml   this environment as a matrix
  envdoctor matrix schema > matrix.schema.json       JSON Schema of the format, for editors

exit codes: 0 all good, 1 a matrix does not resolve, breaks a rule, could not be evaluated without building or
the resolver failed (a build under --allow-build, an unreachable index), 2 bad input or usage
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("matrix", help="list, show, validate, diff, freeze matrices; print their JSON Schema",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ms = p.add_subparsers(dest="matrix_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ls = ms.add_parser("list", help="the matrices on the search path")
    ls.add_argument("--format", choices=("text", "json"), default="text")
    ls.set_defaults(func=_list)

    sh = ms.add_parser("show", help="one matrix with its rules, reasons and evidence")
    sh.add_argument("matrix", metavar="M", help="name, name@version or path to a .toml")
    sh.add_argument("--format", choices=("text", "json"), default="text")
    sh.add_argument("--evidence", action="store_true", help="print every rule's evidence too")
    sh.set_defaults(func=_show)

    va = ms.add_parser("validate", help="resolve a matrix or requirements file with a real resolver")
    va.add_argument("matrix", nargs="?", metavar="M", help="name, name@version or path to a .toml; a path to any "
                    "other file is read as a requirements file (as -r)")
    va.add_argument("-r", "--requirements", metavar="FILE", help="validate a requirements file instead")
    va.add_argument("--allow-build", action="store_true",
                    help="requirements files: trust their packages enough to run the build backend of each sdist "
                         "(setup.py) to read its requirements, as plain pip does; this interpreter only. Without "
                         "it, a package with no usable wheel is reported as not evaluated, never as a conflict")
    va.add_argument("--all", action="store_true", help="validate every bundled matrix")
    va.add_argument("--python-version", metavar="X.Y", help="resolve for this Python (default: the matrix's lowest "
                    "and highest allowed; for -r, this interpreter's)")
    va.add_argument("--platform", metavar="P", help="linux, linux-aarch64, windows, macos, macos-x86_64 "
                    "(default: the first the matrix allows)")
    va.add_argument("--backend", choices=("auto", "uv", "pip"), default="auto",
                    help="resolver: uv's pip compile (auto, when installed) or pip --dry-run --report")
    va.add_argument("--format", choices=("text", "json"), default="text")
    va.set_defaults(func=_validate)

    di = ms.add_parser("diff", help="what moved between two matrices, and the reason recorded for it")
    di.add_argument("a", metavar="A")
    di.add_argument("b", metavar="B")
    di.add_argument("--evidence", action="store_true", help="print the evidence of each change too")
    di.add_argument("--format", choices=("text", "json"), default="text")
    di.set_defaults(func=_diff)

    fr = ms.add_parser("freeze", help="write this environment as a matrix (TOML on stdout)")
    fr.add_argument("--name", required=True, help="the matrix name")
    fr.add_argument("--version", dest="matrix_version", help="the matrix version (default: today, YYYY.MM.DD)")
    fr.add_argument("--ranges", action="store_true", help="ranges (same major, or same minor for 0.x) instead of pins")
    fr.add_argument("--extends", metavar="M", help="a matrix to extend, e.g. drift or llama31")
    fr.add_argument("--only", metavar="NAMES", help="comma-separated packages to freeze (default: all but pip/uv tooling)")
    fr.add_argument("--python", metavar="PATH", help="freeze another interpreter (or venv folder)")
    fr.set_defaults(func=_freeze)

    sc = ms.add_parser("schema", help="the JSON Schema of the matrix format")
    sc.set_defaults(func=_schema)


def _list(args: argparse.Namespace) -> int:
    from .._matrix.loader import DEFAULT_MATRIX, available, load_matrix
    from ..errors import MatrixError

    rows: list[dict[str, Any]] = []
    entries = available()
    newest = {e.name: e.ref for e in entries}
    for e in entries:
        try:
            m = load_matrix(e.path)
            status: str = m.status
            title, problem = m.title, None
        except MatrixError as err:
            status, title, problem = "invalid", "", "; ".join(err.problems)  # not a matrix status: a row state
        rows.append({"ref": e.ref, "name": e.name, "version": e.version, "status": status, "title": title,
                     "bundled": e.bundled, "path": str(e.path), "default": e.ref == newest.get(DEFAULT_MATRIX),
                     "newest": newest[e.name] == e.ref, "problem": problem})
    if args.format == "json":
        sys.stdout.write(json.dumps({"schema_version": 1, "matrices": rows}, indent=2, sort_keys=True) + "\n")
        return 0
    width = max((len(r["ref"]) for r in rows), default=10)
    for r in rows:
        mark = "*" if r["default"] else " "
        where = "" if r["bundled"] else f"  ({r['path']})"
        sys.stdout.write(f"{mark} {r['ref']:<{width}}  {r['status']:<8}  {r['problem'] or r['title']}{where}\n")
    sys.stdout.write("\n* the default (envdoctor check without --matrix); a name alone means its newest version\n")
    return 0


def _show(args: argparse.Namespace) -> int:
    from .._matrix.loader import load_matrix

    m = load_matrix(args.matrix)
    if args.format == "json":
        sys.stdout.write(json.dumps({"schema_version": 1, "matrix": m.to_dict()}, indent=2, sort_keys=True) + "\n")
        return 0
    sys.stdout.write(_show_text(m, args.evidence))
    return 0


def _show_text(m: Any, evidence: bool) -> str:
    from .._matrix.kinds import KINDS

    out = [f"{m.ref}  [{m.status}]  {m.title}", f"  source: {m.source}", f"  chain: {' -> '.join(m.chain)}"]
    if m.status_reason:
        out.append(f"  status: {m.status_reason}")
    if m.model_types:
        out.append(f"  model types: {', '.join(m.model_types)} (check --model picks this matrix for them)")
    if m.remove:
        out.append(f"  removes: {', '.join(m.remove)}")
    if m.description:
        out += ["", *("  " + ln for ln in m.description.splitlines())]

    def rule(head: str, r: Any) -> None:
        out.append(f"  {head}")
        if getattr(r, "reason", None):
            out.append(f"      why: {r.reason}")
        if evidence:
            out.extend(f"      evidence: {e}" for e in getattr(r, "evidence", ()))

    counts: list[str] = []
    for kind in KINDS:
        rules = kind.rules(m)
        if kind.section == "packages":  # packages are listed under their install groups, in install order
            _show_packages(m, rule, out)
        elif not rules or kind.listed == "hidden":
            continue
        elif kind.listed == "count":
            counts.append(f"{len(rules)} {kind.title}")
        elif kind.listed == "inline":
            out.append(f"\n{kind.title}: " + ", ".join(kind.head(r) for r in rules))
        else:
            out.append(f"\n{kind.title}:")
            for r in rules:
                rule(kind.head(r), r)
    if counts:
        out.append(f"\nfrom the chain: {', '.join(counts)}")
    return "\n".join(out) + "\n"


def _show_packages(m: Any, rule: Any, out: list[str]) -> None:
    for group, pkgs in m.groups_in_order():
        index = f" from {group.index_url}" if group and group.index_url else ""
        out.append(f"\npackages ({group.order}. {group.name}{index}):" if group else "\npackages:")
        for p in pkgs:
            flags = [f"+{p.local}" if p.local else "", f"@ {p.source}" if p.source else "",
                     "--no-deps" if p.no_deps else "", "optional" if p.optional else "",
                     "protected" if p.protected else ""]
            rule(f"{p.name} {p.specifier or 'any'} {' '.join(f for f in flags if f)}".rstrip(), p)


def _validate(args: argparse.Namespace) -> int:
    from .._matrix.loader import available, load_matrix
    from .._matrix.targets import parse_platform, parse_python_version
    from .._matrix.trust import validate_matrix, validate_requirements
    from ..errors import UsageError

    chosen = sum(bool(x) for x in (args.matrix, args.requirements, args.all))
    if chosen != 1:
        raise UsageError("matrix validate: give one of M, -r FILE or --all")
    if args.matrix and not args.matrix.endswith(".toml") and os.path.isfile(args.matrix):
        args.requirements, args.matrix = args.matrix, None  # a requirements file given as M
    if args.allow_build and not args.requirements:
        raise UsageError("--allow-build: only for a requirements file (a matrix is validated from wheels; "
                         "it names its targets' Python and platform)")
    py = parse_python_version(args.python_version) if args.python_version else None
    plat = parse_platform(args.platform) if args.platform else None
    kw = dict(python_version=py, platform=plat, backend=args.backend, progress=_progress)
    if args.requirements:
        rules = [load_matrix(e.path) for e in available() if e.bundled]
        results = [validate_requirements(args.requirements, rules=rules, allow_build=args.allow_build,
                                         **kw)]  # type: ignore[arg-type]
    else:
        refs = [e.ref for e in available() if e.bundled] if args.all else [args.matrix]
        results = [validate_matrix(load_matrix(r), **kw) for r in refs]  # type: ignore[arg-type]
    if args.format == "json":
        sys.stdout.write(json.dumps({"schema_version": 1, "results": [_validation_dict(v) for v in results]},
                                    indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write("".join(_validation_text(v) for v in results))
    return 0 if all(v.ok for v in results) else 1


def _progress(message: str) -> None:
    print(f"  {message} ...", file=sys.stderr, flush=True)


def _validation_dict(v: Any) -> dict[str, Any]:
    def problem(p: Any) -> dict[str, Any]:
        return {"kind": p.kind, "message": p.message, "detail": list(p.detail)}

    return {
        "subject": v.subject, "ok": v.ok, "verdict": v.verdict,
        "targets": [{"python_version": t.python_version, "platform": t.platform, "ok": t.ok, "verdict": t.verdict,
                     "backend": t.backend, "unbuilt": list(t.unbuilt),
                     "seconds": round(t.seconds, 2), "installs": dict(t.installs),
                     "problems": [problem(p) for p in t.problems]} for t in v.targets],
        "problems": [problem(p) for p in v.problems],
        "unchecked": [{"name": u.name, "reason": u.reason} for u in v.unchecked],
    }


def _validation_text(v: Any) -> str:
    heads = {"ok": "OK", "conflict": "FAILED", "broken": "FAILED", "error": "ERROR", "not-evaluated": "NOT EVALUATED"}
    out = [f"{v.subject}: {heads[v.verdict]}"]
    for t in v.targets:
        state = {"ok": f"resolves ({len(t.installs)} distributions)", "conflict": "does not resolve",
                 "not-evaluated": "could not be evaluated without building", "error": "the resolver failed",
                 "broken": "resolves but breaks a rule"}[t.verdict]
        out.append(f"  Python {t.python_version} / {t.platform}: {state} [{t.backend}, {t.seconds:.1f} s]")
        for p in t.problems:
            out.append(f"    {p.kind}: {p.message}")
    for p in v.problems:
        out.append(f"  {p.kind}: {p.message}")
    for u in v.unchecked:
        if not any(u.name in t.unbuilt for t in v.targets):  # said once, in the target's verdict
            out.append(f"  not checked: {u.reason}")
    return "\n".join(out) + "\n"


def _diff(args: argparse.Namespace) -> int:
    from .._matrix.diff import diff, render_text
    from .._matrix.loader import load_matrix

    d = diff(load_matrix(args.a), load_matrix(args.b))
    if args.format == "json":
        sys.stdout.write(json.dumps(d.to_dict(), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_text(d, evidence=args.evidence))
    return 0


def _freeze(args: argparse.Namespace) -> int:
    from .._env.environment import inspect_environment
    from .._env.gpu import declared
    from .._matrix.freeze import freeze

    env = inspect_environment(python=args.python, gpu=declared("none"))
    only = [n.strip() for n in (args.only or "").split(",") if n.strip()]
    sys.stdout.write(freeze(env, args.name, version=args.matrix_version, ranges=args.ranges,
                            extends=args.extends, only=only))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from .._matrix.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return 0
