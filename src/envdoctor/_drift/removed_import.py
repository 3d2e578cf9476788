"""`ImportError: cannot import name 'X' from 'trl'`: the replacement from the drift matrix's [[imports]], or the facts.

A name with an import rule gets its release and replacement from the rule (the same rules lint reports). A name
without one is judged from the installed module's own file: whether its text names `X` at all (read as text,
never imported), which says whether this environment raises the error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from .judge import NOT_INSPECTED, Context, Judgement

if TYPE_CHECKING:  # pragma: no cover
    from .._env.environment import Environment
    from .._matrix.model import ImportRule


def _module_file(env: Environment, package: str, module: str) -> Path | None:
    dist = env.get(package)
    if dist is None or not dist.location:
        return None
    base = Path(dist.location, *module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _names_it(env: Environment, package: str, module: str, name: str) -> bool | None:
    """Whether the installed module's source text mentions `name` (None when the file cannot be read)."""
    path = _module_file(env, package, module)
    if path is None:
        return None
    try:
        return name in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _by_rule(rule: ImportRule, module: str, installed: Version | None, env: Environment | None) -> Judgement:
    cause = rule.reason
    fix = f"{rule.instead[0].upper()}{rule.instead[1:]} (`envdoctor lint` finds every such import); or pin " \
          f"'{rule.package}<{rule.removed}'."
    facts: dict[str, object] = {"name": rule.name, "module": module, "removed": str(rule.removed),
                                "replacement": rule.replacement, "installed": str(installed) if installed else None}
    if env is None:
        return Judgement(None, NOT_INSPECTED, cause, fix, rule.evidence, facts)
    if installed is None:
        return Judgement(None, f"{rule.package} is not installed here, so this environment cannot have raised it",
                         cause, fix, rule.evidence, facts)
    if installed >= rule.removed:
        return Judgement(True, f"{rule.package} {installed} is installed here, at or after {rule.removed}, where "
                         f"`{rule.name}` is gone", cause, fix, rule.evidence, facts)
    return Judgement(False, f"{rule.package} {installed} is installed here and still has `{rule.name}`: the error came "
                     "from another environment (kernel, venv, old copy)", cause, fix, rule.evidence, facts)


def judge(ctx: Context) -> Judgement:
    """The removed name's replacement and release, or what the installed package says about the name."""
    from .._lint.imports import rule_for

    name, module = ctx.groups.get("name", ""), ctx.groups.get("module", "")
    package = module.split(".")[0]
    installed = ctx.env.version_of(package) if ctx.env is not None else None
    rule = rule_for(ctx.matrix, module, name)
    if rule is not None:
        return _by_rule(rule, module, installed, ctx.env)
    facts: dict[str, object] = {"name": name, "module": module, "installed": str(installed) if installed else None}
    fix = (f"Look `{name}` up in {package}'s release notes: import its replacement, or install the release the "
           f"code was written for (`pip show {package}` shows the installed one); restart the runtime after installing.")
    names = _names_it(ctx.env, package, module, name) if ctx.env is not None and installed is not None else None
    if names:
        cause = (f"The {package} that raised this has no `{name}` in {module}, but the installed {package} {installed} "
                 "names it: an older copy was loaded (another environment, a kernel started before the upgrade, or a "
                 "second install that shadows it).")
        return Judgement(False, f"the installed {package} {installed}'s {module} names `{name}`: the error came from "
                         "another environment or a half-upgraded install (restart the runtime)", cause,
                         "Restart the runtime; `envdoctor check` finds duplicate or shadowed installs.", facts=facts)
    here = f"{package} {installed}" if installed else f"the {package} that raised it"
    cause = (f"{here} has no `{name}` in {module}: the name was removed or renamed in a release newer than the code, "
             "or it is newer than the installed release (no import rule of the drift matrix names it).")
    if ctx.env is None:
        return Judgement(None, NOT_INSPECTED, cause, fix, facts=facts)
    if installed is None:
        return Judgement(None, f"{package} is not installed here, so this environment cannot have raised it", cause,
                         fix, facts=facts)
    if names is None:
        return Judgement(None, f"{package} {installed} is installed here; its {module} source cannot be read to tell "
                         f"whether it has `{name}`", cause, fix, facts=facts)
    return Judgement(True, f"the installed {package} {installed}'s {module} does not name `{name}`: this environment "
                     "raises it", cause, fix, facts=facts)


def by_rule_only(ctx: Context) -> Judgement | None:
    """For `from transformers import X`: the import rule's replacement when there is one, else the symptom's data."""
    from .._lint.imports import rule_for

    module = ctx.groups.get("module", "transformers")
    rule = rule_for(ctx.matrix, module, ctx.groups.get("name", ""))
    if rule is None:
        return None
    installed = ctx.env.version_of(rule.package) if ctx.env is not None else None
    return _by_rule(rule, module, installed, ctx.env)
