"""List the keywords that transformers, TRL, peft and datasets removed or renamed, release by release.

    python tools/api_drift.py [--releases PKG=V1,V2,... ...] [--cache DIR] [--wheels DIR ...] [--offline]
                              [--format text|json] [--new-only]

For each release, the wheel is fetched with `pip download --no-deps --only-binary :all:` (pip's own configured
index) into the cache, unless a wheel of that name and version is already in a `--wheels` folder or the cache.
The sources are read from the zip with `ast`: nothing is imported or run. For every class and function in
TARGETS (the callables the drift rules cover, plus TRL's other trainers and configs) it collects the keywords
accepted: `__init__`'s parameters, or a dataclass's fields (with the fields of its bases found in the same
wheel), the names a `@deprecate_kwarg`/`@_deprecate_arguments` decorator still accepts, and for functions the
names read through `kwargs.pop("name")`/`kwargs.get("name")`. Consecutive releases are then diffed:

    trl 0.12.2 -> 0.13.0 trl.DPOTrainer: removed beta (now in trl.DPOConfig) [no rule]

`[rule]` means the drift matrix already has a rule for that keyword, `[no rule]` that it does not (what to
review). A keyword that disappears while a similar new one appears is listed as a rename candidate.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

# package -> (dotted callable as the rules name it, where to find it: "Class", "Class.method" or "function")
TRL_PAIRS = ("SFT", "DPO", "ORPO", "KTO", "Reward", "GRPO", "CPO", "PPO")
TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "transformers": (
        ("transformers.TrainingArguments", "TrainingArguments"),
        ("transformers.Seq2SeqTrainingArguments", "Seq2SeqTrainingArguments"),
        ("transformers.Trainer", "Trainer"),
        ("transformers.Seq2SeqTrainer", "Seq2SeqTrainer"),
        ("transformers.BitsAndBytesConfig", "BitsAndBytesConfig"),
        ("transformers.*.from_pretrained", "PreTrainedModel.from_pretrained"),
        ("transformers.*.push_to_hub", "PushToHubMixin.push_to_hub"),
        ("transformers.*.gradient_checkpointing_enable", "PreTrainedModel.gradient_checkpointing_enable"),
    ),
    "trl": tuple(item for p in TRL_PAIRS for item in ((f"trl.{p}Trainer", f"{p}Trainer"),
                                                      (f"trl.{p}Config", f"{p}Config"))),
    "peft": (
        ("peft.LoraConfig", "LoraConfig"),
        ("peft.get_peft_model", "get_peft_model"),
        ("peft.prepare_model_for_kbit_training", "prepare_model_for_kbit_training"),
        ("peft.PeftModel.from_pretrained", "PeftModel.from_pretrained"),
        ("peft.AutoPeftModelForCausalLM.from_pretrained", "_BaseAutoPeftModel.from_pretrained"),
    ),
    "datasets": (("datasets.load_dataset", "load_dataset"),),
}
# A release per minor (the last patch), chosen so a cold run downloads about a hundred wheels in minutes.
DEFAULT_RELEASES: dict[str, tuple[str, ...]] = {
    "transformers": ("4.36.2", "4.37.2", "4.38.2", "4.39.3", "4.40.2", "4.41.2", "4.42.4", "4.43.4", "4.44.2",
                     "4.45.2", "4.46.3", "4.47.1", "4.48.3", "4.49.0", "4.50.3", "4.51.3", "4.52.4", "4.53.3",
                     "4.54.1", "4.55.4", "4.56.2", "4.57.6", "5.0.0", "5.1.0", "5.2.0", "5.3.0", "5.4.0", "5.5.4",
                     "5.6.2", "5.7.0", "5.8.1", "5.9.0", "5.10.4", "5.11.0", "5.12.1", "5.13.1", "5.14.1",
                     "5.15.1", "5.16.1", "5.17.0", "5.18.0", "5.19.0", "5.20.2", "5.21.1", "5.22.2", "5.23.0",
                     "5.24.0"),
    "trl": ("0.7.11", "0.8.6", "0.9.6", "0.10.1", "0.11.4", "0.12.2", "0.13.0", "0.14.0", "0.15.2", "0.16.1",
            "0.17.0", "0.18.2", "0.19.1", "0.20.0", "0.21.0", "0.22.2", "0.23.1", "0.24.0", "0.25.1", "0.26.2",
            "0.27.2", "0.28.0", "0.29.1", "1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.1", "1.6.0", "1.7.1",
            "1.8.0", "1.9.2", "1.10.0", "1.11.0", "1.12.0", "1.13.0", "1.14.2", "1.15.0", "1.16.0"),
    "peft": ("0.6.2", "0.7.1", "0.8.2", "0.9.0", "0.10.0", "0.11.1", "0.12.0", "0.13.2", "0.14.0", "0.15.2",
             "0.16.0", "0.17.1", "0.18.1", "0.19.1", "0.20.0", "0.21.2"),
    "datasets": ("2.14.4", "2.20.0", "2.21.0", "3.0.0", "3.6.0", "4.0.0", "5.2.0"),
}
_DEPRECATORS = {"deprecate_kwarg", "_deprecate_arguments", "deprecate_arguments"}


@dataclass(frozen=True)
class Surface:
    """What one callable of one release accepts."""

    params: frozenset[str]
    var_kw: bool = False
    shims: frozenset[str] = frozenset()  # old names a deprecation decorator still accepts
    renamed: tuple[tuple[str, str], ...] = ()  # (old, new) that a decorator declares
    path: str = ""  # the file inside the wheel

    @property
    def accepts(self) -> frozenset[str]:
        """Every keyword name the callable takes: parameters and decorator shims."""
        return self.params | self.shims


@dataclass(frozen=True)
class Change:
    """A keyword that one release accepts and the next one does not (or a rename candidate)."""

    package: str
    callable: str
    before: str
    after: str
    keyword: str
    what: str  # "removed", "renamed", "deprecated", "moved"
    new: str | None = None
    covered: bool = False
    note: str = ""

    def line(self) -> str:
        """One line of the text report."""
        tail = f" -> {self.new}" if self.new else ""
        note = f" ({self.note})" if self.note else ""
        return (f"{self.package} {self.before} -> {self.after} {self.callable}: {self.what} {self.keyword}{tail}"
                f"{note} [{'rule' if self.covered else 'no rule'}]")


@dataclass
class Release:
    """The sources of one wheel, read lazily: path -> text, only for files that contain a wanted name."""

    package: str
    version: Version
    wheel: Path
    _texts: dict[str, str] = field(default_factory=dict)
    _trees: dict[str, ast.Module] = field(default_factory=dict)

    def sources(self) -> dict[str, str]:
        """Every .py file of the wheel (cached)."""
        if not self._texts:
            with zipfile.ZipFile(self.wheel) as z:
                for name in z.namelist():
                    if name.endswith(".py") and "/tests/" not in name:
                        self._texts[name] = z.read(name).decode("utf-8", "replace")
        return self._texts

    def tree(self, path: str) -> ast.Module | None:
        """The parsed module (None when it does not parse)."""
        if path not in self._trees:
            try:
                self._trees[path] = ast.parse(self.sources()[path])
            except SyntaxError:
                return None
        return self._trees[path]

    def find_def(self, name: str) -> tuple[str, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef] | None:
        """The top-level class or function `name`; files outside experimental/ and deprecated/ win."""
        needle = re.compile(rf"^(class|def) {re.escape(name)}\b", re.M)
        hits = sorted((p for p, t in self.sources().items() if needle.search(t)),
                      key=lambda p: ("experimental" in p or "deprecat" in p or "legacy" in p, len(p), p))
        for path in hits:
            tree = self.tree(path)
            for node in tree.body if tree else ():
                if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                    return path, node
        return None


def _args(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[set[str], bool]:
    a = fn.args
    names = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]} - {"self", "cls"}
    return names, a.kwarg is not None


def _kwargs_reads(fn: ast.AST) -> set[str]:
    """Names read through kwargs.pop("name", ...) / kwargs.get("name", ...) (from_pretrained reads most so)."""
    out = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("pop", "get") \
                and isinstance(node.func.value, ast.Name) and "kw" in node.func.value.id and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            out.add(node.args[0].value)
    return out


def _shims(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[set[str], list[tuple[str, str]]]:
    """Old names a deprecation decorator accepts, and the (old, new) pairs it declares."""
    names: set[str] = set()
    pairs: list[tuple[str, str]] = []
    for dec in fn.decorator_list:
        if not isinstance(dec, ast.Call):
            continue
        func = dec.func.attr if isinstance(dec.func, ast.Attribute) else getattr(dec.func, "id", "")
        if func not in _DEPRECATORS:
            continue
        strings = [n.value for a in [*dec.args, *(k.value for k in dec.keywords if k.arg != "version")]
                   for n in ast.walk(a) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        new = next((k.value.value for k in dec.keywords if k.arg == "new_name" and isinstance(k.value, ast.Constant)
                    and isinstance(k.value.value, str)), None)
        if func == "deprecate_kwarg" and dec.args and isinstance(dec.args[0], ast.Constant):
            old = str(dec.args[0].value)
            names.add(old)
            if new:
                pairs.append((old, new))
        else:
            names.update(s for s in strings if s.isidentifier() and not re.fullmatch(r"\d[\d.]*", s))
    return names, pairs


def _is_dataclass(cls: ast.ClassDef) -> bool:
    for dec in cls.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "dataclass":
            return True
    return False


def _fields(cls: ast.ClassDef) -> set[str]:
    out = set()
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            ann = ast.unparse(node.annotation)
            if "ClassVar" not in ann and not node.target.id.startswith("_"):
                out.add(node.target.id)
    return out


def _class_surface(rel: Release, path: str, cls: ast.ClassDef, depth: int = 0) -> Surface:
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        params, var_kw = _args(init)
        shims, pairs = _shims(init)
        return Surface(frozenset(params), var_kw, frozenset(shims - params), tuple(pairs), path)
    params = _fields(cls) if _is_dataclass(cls) else set()
    var_kw = False
    for base in cls.bases:  # dataclass fields are inherited; only bases defined in the same wheel are known
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        found = rel.find_def(name) if name and depth < 5 else None
        if found and isinstance(found[1], ast.ClassDef):
            inherited = _class_surface(rel, found[0], found[1], depth + 1)
            params |= inherited.params
            var_kw = var_kw or inherited.var_kw
    return Surface(frozenset(params), var_kw, frozenset(), (), path)


def surface(rel: Release, where: str) -> Surface | None:
    """What `where` ('Class', 'Class.method' or 'function') accepts in this release; None when it is absent."""
    head, _, method = where.partition(".")
    found = rel.find_def(head)
    if found is None:
        return None
    path, node = found
    if method:
        if not isinstance(node, ast.ClassDef):
            return None
        fn = next((n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                   and n.name == method), None)
        if fn is None:
            return None
        node = fn
    if isinstance(node, ast.ClassDef):
        return _class_surface(rel, path, node)
    params, var_kw = _args(node)
    shims, pairs = _shims(node)
    reads = _kwargs_reads(node) if var_kw else set()
    return Surface(frozenset(params | reads), var_kw, frozenset(shims - params), tuple(pairs), path)


def _partner(callable_: str) -> str | None:
    """The config a trainer's keywords move into: trl.DPOTrainer -> trl.DPOConfig, Trainer -> TrainingArguments."""
    if callable_.endswith("Seq2SeqTrainer"):
        return "transformers.Seq2SeqTrainingArguments"
    if callable_ == "transformers.Trainer":
        return "transformers.TrainingArguments"
    if callable_.startswith("trl.") and callable_.endswith("Trainer"):
        return callable_[: -len("Trainer")] + "Config"
    return None


def diff(package: str, releases: Sequence[Release], covered: set[tuple[str, str]] | None = None,
         targets: Sequence[tuple[str, str]] | None = None) -> list[Change]:
    """Every keyword lost between consecutive releases of one package, for every target (TARGETS by default)."""
    covered = covered or set()
    out: list[Change] = []
    wanted = TARGETS.get(package, ()) if targets is None else targets
    table = {c: [surface(r, where) for r in releases] for c, where in wanted}
    for callable_, surfaces in table.items():
        for i in range(1, len(releases)):
            prev, cur = surfaces[i - 1], surfaces[i]
            if prev is None or cur is None:
                continue
            a, b = str(releases[i - 1].version), str(releases[i].version)
            partner = table.get(_partner(callable_) or "", [None] * len(releases))[i]

            def add(kw: str, what: str, new: str | None = None, note: str = "",
                    c: str = callable_, a: str = a, b: str = b) -> None:
                out.append(Change(package, c, a, b, kw, what, new, (c, kw) in covered, note))

            if prev.path != cur.path:
                add("", "file moved", None, f"{prev.path} -> {cur.path}")
            gone = sorted(prev.accepts - cur.accepts)
            fresh = cur.accepts - prev.accepts
            declared = dict(cur.renamed)
            for kw in sorted((prev.params & cur.shims) - set(declared)):
                add(kw, "deprecated", None, "only a deprecation shim accepts it now")
            for old, new in sorted(declared.items()):
                if old in prev.params:
                    add(old, "renamed", new, "deprecation shim")
            for kw in gone:
                if cur.var_kw:
                    note = "still swallowed by **kwargs"
                elif partner is not None and kw in partner.accepts:
                    note = f"now in {_partner(callable_)}"
                else:
                    note = ""
                match = difflib.get_close_matches(kw, sorted(fresh), n=1, cutoff=0.6)
                if match:
                    add(kw, "renamed?", match[0], note)
                else:
                    add(kw, "moved" if note.startswith("now in") else "removed", None, note)
    return out


def covered_by_rules() -> set[tuple[str, str]]:
    """(callable, keyword) pairs the bundled drift matrix has a rule for (inherited rules included)."""
    try:
        from envdoctor._drift import rules
        from envdoctor._matrix.loader import load_matrix
    except ImportError:
        return set()
    matrix = load_matrix("drift", use_cache=False)
    names = {c for pkg in TARGETS.values() for c, _ in pkg}
    return {(c, r.old) for c in names for r in rules.rules_for(matrix, c)}


def find_wheel(package: str, version: str, folders: Iterable[Path]) -> Path | None:
    """A wheel of that name and version already on disk."""
    want = (canonicalize_name(package), Version(version))
    for folder in folders:
        for whl in sorted(folder.glob("*.whl")) if folder.is_dir() else ():
            try:
                name, ver, _, _ = parse_wheel_filename(whl.name)
            except (ValueError, InvalidVersion):
                continue
            if (name, ver) == want:
                return whl
    return None


def fetch(package: str, version: str, cache: Path, folders: Sequence[Path], offline: bool) -> Path:
    """The wheel, from a folder or the cache, else through `pip download --no-deps` into the cache."""
    found = find_wheel(package, version, [*folders, cache])
    if found is not None:
        return found
    if offline:
        raise SystemExit(f"api_drift: no wheel of {package}=={version} in {', '.join(map(str, [*folders, cache]))}")
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                           f"{package}=={version}", "-d", str(cache)], capture_output=True, text=True)
    found = find_wheel(package, version, [cache])
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"api_drift: pip download {package}=={version} failed: {proc.stderr.strip()[-500:]}")
    return found


def _releases(specs: Sequence[str]) -> dict[str, list[str]]:
    if not specs:
        return {k: list(v) for k, v in DEFAULT_RELEASES.items()}
    out: dict[str, list[str]] = {}
    for spec in specs:
        pkg, sep, versions = spec.partition("=")
        if not sep or not versions:
            raise SystemExit(f"api_drift: --releases {spec!r}: write PACKAGE=V1,V2,...")
        try:
            out[pkg] = sorted({v for v in versions.split(",") if v}, key=Version)
        except InvalidVersion as e:
            raise SystemExit(f"api_drift: --releases {spec!r}: {e}") from e
    return out


def run(specs: Sequence[str], cache: Path, folders: Sequence[Path], offline: bool) -> list[Change]:
    """Fetch every release and diff each package's consecutive releases."""
    covered = covered_by_rules()
    changes: list[Change] = []
    for package, versions in _releases(specs).items():
        rels = [Release(package, Version(v), fetch(package, v, cache, folders, offline)) for v in versions]
        changes += diff(package, rels, covered)
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    """Print every lost keyword; exit 0 (the report is for review, not a gate)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--releases", action="append", default=[], metavar="PKG=V1,V2",
                   help="releases to diff, e.g. trl=0.12.2,0.13.0 (default: a release per minor of each)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/envdoctor-api-drift"))
    p.add_argument("--wheels", type=Path, action="append", default=[], help="folders that already hold wheels")
    p.add_argument("--offline", action="store_true", help="never download; every wheel must be on disk")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--new-only", action="store_true", help="only keywords no drift rule covers yet")
    a = p.parse_args(argv)
    changes = run(a.releases, a.cache, a.wheels, a.offline)
    if a.new_only:
        changes = [c for c in changes if not c.covered]
    if a.format == "json":
        print(json.dumps([c.__dict__ for c in changes], indent=1, sort_keys=True))
    else:
        print("\n".join(c.line() for c in changes) or "no keyword was lost")
    return 0


def iter_lines(changes: Iterable[Change]) -> Iterator[str]:
    """The text report's lines (for callers that print elsewhere)."""
    return (c.line() for c in changes)


if __name__ == "__main__":
    raise SystemExit(main())
