"""Typed probe params: what a matrix's `[[probes]] params` may say, validated before any probe runs.

A matrix is data, never code (issue 15): it names a registered probe and passes params that the probe's own
pydantic model accepts (`extra="forbid"`, frozen). Class names come from allow-lists the probes own, keyword
values are plain TOML scalars, modules are import names of the matrix's own packages. `validate_probe_params`
collects every problem of a matrix (for `matrix validate`); `certify` refuses a matrix with any (exit 2).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

# A keyword value: a plain TOML scalar, or a flat list or table of them; never a callable or an object.
PlainScalar = StrictBool | StrictInt | StrictFloat | StrictStr
PlainValue = PlainScalar | list[PlainScalar] | dict[str, PlainScalar]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)]
ModuleName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", max_length=200)]
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass(frozen=True)
class MatrixFacts:
    """What a probe's params are judged against: the matrix's packages and the import names they provide."""

    packages: frozenset[str]  # canonical distribution names
    import_names: frozenset[str]  # top-level modules the matrix's packages install (or would)


class ProbeParams(BaseModel):
    """Params every probe takes; a probe's own model subclasses this one."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    allow_cpu: StrictBool = Field(True, description="Whether the probe may run on the CPU (`--device cpu`).")

    def problems(self, facts: MatrixFacts) -> list[str]:
        """What is wrong with these params for this matrix (beyond their types); [] when nothing is."""
        return []


def plain_keywords(keywords: Mapping[str, Any], where: str) -> list[str]:
    """Keyword values that look like dotted callables ('os.system'): refused, a matrix names no code."""
    out = []
    for key, value in keywords.items():
        values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and _DOTTED.match(v) for v in values):
            out.append(f"{where}.{key}: {value!r} looks like a dotted name; keyword values are plain data, "
                       "never callables or objects")
    return out


_UNION_TAGS = {"bool", "int", "float", "str", "constrained-str"}


def _format(err: ValidationError, where: str, model: Any) -> list[str]:
    """One line per offending param: a union's branches (bool, int, list[...]) fold into one message."""
    seen: dict[tuple[str, ...], list[str]] = {}
    for e in err.errors():
        loc = tuple(str(x) for x in e["loc"] if not (isinstance(x, str) and (x in _UNION_TAGS or "[" in x)))
        prefix = next((loc[:n] for n in range(len(loc) + 1) if loc[:n] in seen), None)
        if prefix is not None:
            seen[prefix].append(e["msg"])
            continue
        seen[loc] = ["unknown param" if e["type"] == "extra_forbidden" else e["msg"]]
    out = []
    for loc, msgs in seen.items():
        msg = msgs[0]
        if len(msgs) > 1 and len(loc) >= 2:
            msg = "not a plain value: a string, number or boolean, or a flat list or table of them"
        elif len(msgs) > 1:
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == loc[0]), None)
            msg = f"not valid ({field.description if field is not None and field.description else msgs[0]})"
        out.append(f"{where}: params{'.' + '.'.join(loc) if loc else ''}: {msg}")
    return out


def validate(spec: Any, params: Mapping[str, Any], facts: MatrixFacts, where: str) -> tuple[dict[str, Any], list[str]]:
    """The params as the probe will get them (validated, unset ones left out) and the problems found.

    Each problem starts with `where` (the matrix file and the probe), then the param: "...: params.class: ...".
    """
    model = getattr(spec, "params", None) or ProbeParams
    try:
        parsed = model.model_validate(dict(params))
    except ValidationError as e:
        problems = _format(e, where, model)
        fields = sorted(f.alias or n for n, f in model.model_fields.items())
        for i, p in enumerate(problems):
            if p.endswith(": unknown param"):
                key = p.rsplit(": ", 1)[0].rsplit(".", 1)[-1]
                hint = difflib.get_close_matches(key, fields, n=1)
                problems[i] = p + (f" (did you mean {hint[0]!r}?)" if hint else f" (it takes {', '.join(fields)})")
        return {}, problems
    return (parsed.model_dump(mode="json", by_alias=True, exclude_unset=True),
            [f"{where}: {p}" for p in parsed.problems(facts)])


def matrix_facts(matrix: Any, env: Any = None) -> MatrixFacts:
    """The matrix's packages and their import names: read from the installed metadata, else derived from the name."""
    from packaging.utils import canonicalize_name

    from .importnames import import_names, name_guess

    packages = frozenset(canonicalize_name(p.name) for p in matrix.packages)
    names: set[str] = set()
    for p in matrix.packages:
        names.add(name_guess(p.name))
        dist = env.get(p.name) if env is not None else None
        if dist is not None and dist.path:
            names.update(import_names(dist.path))
    return MatrixFacts(packages, frozenset(names))


def validate_probe_params(matrix: Any, env: Any = None) -> list[str]:
    """Every problem of a matrix's `[[probes]]`: unknown probe names and params their probe does not accept.

    Each line names the matrix file and the probe, e.g. "llama31/2026.11.toml: probes[3] (training-args):
    params.class: ...". `env` (an inspected Environment) adds the installed packages' import names to the
    modules the `imports` probe may import; without it they are derived from the distribution names.
    """
    from . import registry

    problems = []
    facts = matrix_facts(matrix, env)
    known = registry.all_probes()
    source = getattr(matrix, "source", "") or getattr(matrix, "ref", "the matrix")
    for i, p in enumerate(matrix.probes):
        where = f"{source}: probes[{i}] ({p.name})"
        spec = known.get(p.name)
        if spec is None:
            hint = difflib.get_close_matches(p.name, sorted(known), n=1)
            errors = f"; plugin errors: {' | '.join(registry.load_errors)}" if registry.load_errors else ""
            problems.append(f"{where}: no probe of that name is registered"
                            f"{f' (did you mean {hint[0]!r}?)' if hint else ''}; install the plugin that provides "
                            f"it{errors}")
            continue
        problems += validate(spec, p.params, facts, where)[1]
    return problems
