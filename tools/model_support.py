"""Which transformers release first registers each model type, read from the real wheels (run by hand).

    python tools/model_support.py [--since 4.36] [--cache DIR] [--output src/envdoctor/data/model_types.json]

For every minor release from `--since` to the newest, the first and the last release of that minor are
downloaded with `pip download --no-deps` (pip's own configured index, nothing else) and the model types
they register are read from the wheel's source with `ast`, never imported: `CONFIG_MAPPING_NAMES` in
`transformers/models/auto/configuration_auto.py` (4.x) or the generated
`transformers/models/auto/auto_mappings.py` (5.x), in every literal form the releases use —
`OrderedDict([...])`, `OrderedDict[str, str]([...])`, `.update({...})` and `OrderedDict(**{...}, **...)`.
Yanked releases are read from the index's PEP 691 JSON page and listed, and never chosen as a floor.

The output maps each model type of the newest release to the first release read that has it, with the
wheel line as evidence (`transformers==4.43.0:transformers/models/auto/configuration_auto.py:L123`). Where a
floor falls between two releases read, every release between them is read too, so that a floor is `exact`:
`absent_in` names the release just before it, which lacks the type. `missing_in` lists later releases read
whose mapping lacks a type again.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PACKAGE = "transformers"
SOURCES = ("transformers/models/auto/auto_mappings.py", "transformers/models/auto/configuration_auto.py")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One registered model type, where it is written in the wheel."""

    model_type: str
    config_class: str
    path: str
    line: int


def index_url() -> str:
    """The simple index pip uses: its configured index-url, else pip's own default."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                             capture_output=True, text=True, check=False)
        url = out.stdout.strip() if out.returncode == 0 else ""
    if not url:
        from pip._internal.models.index import PyPI  # pip's default index, so no host name is written here

        url = PyPI.simple_url
    return url.rstrip("/") + "/"


def releases(url: str) -> tuple[list[Version], set[Version]]:
    """Every final release with a wheel on the index, and the yanked ones (PEP 691 JSON)."""
    req = urllib.request.Request(f"{url}{canonicalize_name(PACKAGE)}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the user's own configured index
        page = json.load(resp)
    versions: dict[Version, bool] = {}
    for f in page.get("files", []):
        name = f.get("filename", "")
        if not name.endswith(".whl"):
            continue
        try:
            v = Version(name.split("-")[1])
        except (IndexError, InvalidVersion):
            continue
        if v.is_prerelease or v.is_devrelease:
            continue
        yanked = bool(f.get("yanked"))
        versions[v] = versions.get(v, True) and yanked  # yanked only if every wheel of it is
    return sorted(versions), {v for v, y in versions.items() if y}


def pick(all_versions: list[Version], yanked: set[Version], since: Version) -> list[Version]:
    """Each minor's first and last non-yanked release from `since` on."""
    by_minor: dict[tuple[int, int], list[Version]] = defaultdict(list)
    for v in all_versions:
        if v >= since and v not in yanked:
            by_minor[(v.major, v.minor)].append(v)
    chosen: set[Version] = set()
    for vs in by_minor.values():
        chosen.update((vs[0], vs[-1]))
    return sorted(chosen)


def download(version: Version, cache: Path) -> Path:
    """The wheel of `version`, fetched by pip into `cache` once."""
    found = sorted(cache.glob(f"{PACKAGE}-{version}-*.whl"))
    if found:
        return found[0]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
                    "--dest", str(cache), f"{PACKAGE}=={version}"], check=True)
    found = sorted(cache.glob(f"{PACKAGE}-{version}-*.whl"))
    if not found:
        raise SystemExit(f"pip downloaded no wheel for {PACKAGE}=={version}")
    return found[0]


def _is_mapping_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "CONFIG_MAPPING_NAMES"


def _pairs(node: ast.AST, path: str) -> list[Entry]:
    """Entries of a literal: a list of 2-tuples or a dict of string constants."""
    out: list[Entry] = []
    if isinstance(node, ast.List | ast.Tuple):
        for elt in node.elts:
            if (isinstance(elt, ast.Tuple) and len(elt.elts) == 2
                    and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elt.elts)):
                key, value = elt.elts
                out.append(Entry(key.value, value.value, path, elt.lineno))  # type: ignore[attr-defined]
    elif isinstance(node, ast.Dict):
        for dk, dv in zip(node.keys, node.values, strict=True):
            if isinstance(dk, ast.Constant) and isinstance(dv, ast.Constant) and isinstance(dk.value, str):
                out.append(Entry(dk.value, str(dv.value), path, dk.lineno))
    return out


def _call_entries(call: ast.Call, path: str) -> list[Entry]:
    out: list[Entry] = []
    for arg in call.args:  # OrderedDict([...]) and OrderedDict[str, str]([...])
        out += _pairs(arg, path)
    for kw in call.keywords:  # OrderedDict(**{"gpt-sw3": "GPT2Config"}, **CONFIG_MAPPING_NAMES)
        if kw.arg is None:
            out += _pairs(kw.value, path)
    return out


def mapping_entries(source: str, path: str) -> list[Entry]:
    """Every model type `source` registers in CONFIG_MAPPING_NAMES, parsed with ast (nothing is executed)."""
    out: list[Entry] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(_is_mapping_name(t) for t in node.targets):
            if isinstance(node.value, ast.Call):
                out += _call_entries(node.value, path)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
              and _is_mapping_name(node.func.value)):
            out += _call_entries(node, path)
    return out


def read_wheel(wheel: Path) -> dict[str, Entry]:
    """Model type -> where the wheel registers it (the first place it is written)."""
    found: dict[str, Entry] = {}
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for path in SOURCES:
            if path in names:
                for e in mapping_entries(z.read(path).decode("utf-8"), path):
                    found.setdefault(e.model_type, e)
    if not found:
        raise SystemExit(f"{wheel.name}: no CONFIG_MAPPING_NAMES found in {', '.join(SOURCES)}")
    return found


def floors(read: dict[Version, dict[str, Entry]], wheels: dict[Version, str],
           candidates: list[Version]) -> dict[str, dict[str, object]]:
    """For each model type of the newest release read: the first release read that has it; `exact` when no
    non-yanked release between it and the newest release read without it was left unread."""
    order = sorted(read)
    newest = read[order[-1]]
    out: dict[str, dict[str, object]] = {}
    for model_type in sorted(newest):
        first = next(v for v in order if model_type in read[v])
        i = order.index(first)
        entry = read[first][model_type]
        row: dict[str, object] = {
            "first": str(first),
            "config_class": entry.config_class,
            "evidence": f"{PACKAGE}=={first}:{entry.path}:L{entry.line}",
            "wheel": wheels[first],
        }
        if i == 0:
            row["exact"] = False
            row["note"] = f"present in the oldest release read ({first}); it may be older"
        else:
            before = order[i - 1]
            row["absent_in"] = str(before)
            row["exact"] = not [v for v in candidates if before < v < first]
        gaps = [str(v) for v in order[i:] if model_type not in read[v]]
        if gaps:  # registered, then dropped from the mapping, then back: a floor alone would hide it
            row["missing_in"] = gaps
        out[model_type] = row
    return out


def unpinned(read: dict[Version, dict[str, Entry]], candidates: list[Version]) -> list[Version]:
    """Releases not read yet that lie between a floor and the newest release read without it."""
    order = sorted(read)
    wanted: set[Version] = set()
    for model_type in read[order[-1]]:
        i = next(n for n, v in enumerate(order) if model_type in read[v])
        if i > 0:
            wanted.update(v for v in candidates if order[i - 1] < v < order[i] and v not in read)
    return sorted(wanted)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--since", default="4.36", type=Version, help="oldest minor release to read (default 4.36)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "envdoctor-transformers-wheels",
                    help="where the wheels are kept between runs")
    ap.add_argument("--output", type=Path, default=Path("src/envdoctor/data/model_types.json"))
    args = ap.parse_args(argv)
    start = time.monotonic()
    args.cache.mkdir(parents=True, exist_ok=True)
    url = index_url()
    all_versions, yanked = releases(url)
    chosen = pick(all_versions, yanked, args.since)
    candidates = [v for v in all_versions if v >= args.since and v not in yanked]
    read: dict[Version, dict[str, Entry]] = {}
    wheels: dict[Version, str] = {}
    batch = chosen
    while batch:  # first and last of each minor, then every release a floor still falls between
        for n, v in enumerate(batch, 1):
            wheel = download(v, args.cache)
            read[v], wheels[v] = read_wheel(wheel), wheel.name
            print(f"[{n}/{len(batch)}] {PACKAGE} {v}: {len(read[v])} model types", file=sys.stderr)
        batch = unpinned(read, candidates)
    chosen = sorted(read)
    table = floors(read, wheels, candidates)
    data = {
        "format_version": FORMAT_VERSION,
        "package": PACKAGE,
        "generated_by": "tools/model_support.py",
        "generated_at": time.strftime("%Y-%m-%d", time.gmtime()),
        "releases_read": [str(v) for v in chosen],
        "yanked": sorted(str(v) for v in yanked if v >= args.since),
        "model_types": table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    inexact = [k for k, r in table.items() if not r["exact"] and r["first"] != str(chosen[0])]
    dropped = [k for k, r in table.items() if "missing_in" in r]
    print(f"{len(table)} model types from {len(chosen)} releases ({chosen[0]} .. {chosen[-1]}) in "
          f"{time.monotonic() - start:.0f} s; {len(inexact)} floors not pinned to one release: {', '.join(inexact) or 'none'}; "
          f"{len(dropped)} types missing from some later release: {', '.join(dropped) or 'none'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
