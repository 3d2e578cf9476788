"""Read a pip requirements file the way pip does, keeping each line's `file:line`, its markers and its options.

Markers are kept, not evaluated: they belong to the environment being fixed (`--python`), not to the
interpreter envdoctor runs in. Index options (`-i`, `--extra-index-url`, `-f`, `--no-index`) and `-c`
constraint files are honoured; an option envdoctor cannot honour is refused by name, never dropped.
`--hash` options are kept on their line and switch on pip's hash-checking mode for the whole file, as pip
does: then every requirement line needs a hash and an exact pin (`==`), or the file is refused naming them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ._resolver import Requested as Line  # a requirement line and where it was written
from ._resolver import Sources
from .errors import UsageError

_COMMENT = re.compile(r"(^|\s+)#.*$")
_ENV_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)\}")  # pip expands only ${UPPER_CASE} names
_EGG = re.compile(r"[#&]egg=(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")
_WHEEL = re.compile(r"^(?P<name>[^-/\\]+)-(?P<version>[^-]+)-.+\.whl$")
# pip's hash-checking mode accepts these algorithms (pip/_internal/utils/hashes.py, STRONG_HASHES)
_HASH = re.compile(r"^(?P<algo>sha256|sha384|sha512):(?P<hex>[0-9a-fA-F]+)$")
_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
# The other options pip takes in a requirements file (pip/_internal/req/req_file.py, SUPPORTED_OPTIONS); read
# `as_pip`, they are set aside and reported, never applied
_PIP_ONLY = ("--pre", "--prefer-binary", "--only-binary", "--no-binary", "--trusted-host", "--use-feature")
# option -> the field it fills; the value is the next word or after '='
_VALUED = {"-r": "requirement", "--requirement": "requirement", "-c": "constraint", "--constraint": "constraint",
           "-i": "index_url", "--index-url": "index_url", "--extra-index-url": "extra_index_url",
           "-f": "find_links", "--find-links": "find_links", "-e": "editable", "--editable": "editable"}


@dataclass(frozen=True)
class RequirementsFile:
    """What a requirements file asks for: requirement lines, constraint lines, and the sources it names."""

    lines: tuple[Line, ...]
    constraints: tuple[Line, ...]
    sources: Sources
    require_hashes: bool = False  # a line carries --hash (or the file says --require-hashes): all lines do
    skipped: tuple[tuple[str, str], ...] = ()  # (origin, the line) set aside when read `as_pip`


def read_requirements(path: str | os.PathLike[str], *, as_pip: bool = False) -> RequirementsFile:
    """Parse `path` (following -r and -c), or raise UsageError naming the file and line.

    as_pip: accept every file pip accepts, for a preview (`matrix validate`): a name written on two lines
    (`black` and `black[jupyter]`) is kept twice, as pip's resolver merges them into one requirement with both
    lines' extras and specifiers; an editable line and a pip option the fix cannot honour (`--trusted-host`,
    `--pre`, `--prefer-binary` ...) are set aside in `skipped`, not refused. Off (the fix), such a file is
    refused naming the line: the fix plans one step per name and must not drop an option silently.
    """
    reader = _Reader(as_pip)
    reader.read(Path(path), constraint=False, via=f"-r {path}")
    require = reader.require_hashes or any(ln.hashes for ln in reader.lines)
    if require:
        _check_hash_mode(reader.lines, reader.require_hashes)
    return RequirementsFile(tuple(reader.lines), tuple(reader.constraints), Sources(
        reader.index_url, tuple(reader.extra), tuple(reader.links), reader.no_index), require, tuple(reader.skipped))


def _check_hash_mode(lines: list[Line], asked: bool) -> None:
    """pip's hash-checking mode: every line hashed and pinned exactly (or a URL); all offenders named at once."""
    hashed = next((ln for ln in lines if ln.hashes), None)
    why = "the file says --require-hashes" if asked or hashed is None else f"{hashed.origin} has a --hash"
    problems: list[str] = []
    for ln in lines:
        req = Requirement(ln.requirement)
        if not ln.hashes:
            problems.append(f"{ln.origin}: {req.name} has no --hash")
        elif req.url is None and not (len(req.specifier) == 1 and next(iter(req.specifier)).operator in ("==", "===")
                                      and "*" not in str(req.specifier)):
            problems.append(f"{ln.origin}: {ln.requirement} is not pinned with ==")
    if problems:
        raise UsageError(f"{'; '.join(problems)}: {why}, so pip checks hashes for every line (--require-hashes); "
                         "give each line an exact pin and its --hash (pip-compile --generate-hashes writes them)")


class _Reader:
    def __init__(self, as_pip: bool = False) -> None:
        self.as_pip = as_pip
        self.skipped: list[tuple[str, str]] = []
        self.lines: list[Line] = []
        self.constraints: list[Line] = []
        self.seen: dict[str, str] = {}
        self.files: set[Path] = set()
        self.index_url: str | None = None
        self.extra: list[str] = []
        self.links: list[str] = []
        self.no_index = False
        self.require_hashes = False

    def read(self, path: Path, *, constraint: bool, via: str) -> None:
        if not path.is_file():
            raise UsageError(f"{via}: " + ("not a file" if path.exists() else "no such requirements file"))
        real = path.resolve()
        if real in self.files:
            return  # a file included twice (or in a cycle) is read once, as pip does
        self.files.add(real)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"{via}: cannot read it: {e}") from e
        for lineno, line in _logical_lines(text):
            self._line(line, path, f"{path.name}:{lineno}", constraint)

    def _line(self, line: str, path: Path, origin: str, constraint: bool) -> None:
        line = _ENV_VAR.sub(lambda m: os.environ.get(m.group("name"), m.group(0)), line)
        words = line.split()
        if words[0].startswith("-"):
            self._option(words, path, origin, constraint)
            return
        text, hashes = _split_hashes(line, origin)
        req = _requirement(text, path, origin)
        key = canonicalize_name(Requirement(req).name)
        if not constraint and not self.as_pip:
            if key in self.seen:
                raise UsageError(f"{origin}: {key} is already required at {self.seen[key]}; keep one line")
            self.seen[key] = origin
        (self.constraints if constraint else self.lines).append(Line(req, origin, hashes))

    def _option(self, words: list[str], path: Path, origin: str, constraint: bool) -> None:
        opt, _, value = words[0].partition("=")
        if opt == "--no-index":
            self.no_index = True
            return
        if opt == "--require-hashes":
            self.require_hashes = True
            return
        if opt not in _VALUED:
            if opt[:2] in _VALUED and len(opt) > 2:  # -rbase.txt, -ihttp://...
                opt, value = opt[:2], opt[2:]
            elif self.as_pip and opt in _PIP_ONLY:
                self.skipped.append((origin, " ".join(words)))
                return
            elif self.as_pip:
                raise UsageError(f"{origin}: {opt} is not an option pip takes in a requirements file (pip refuses "
                                 f"the file too); remove it")
            else:
                raise UsageError(f"{origin}: envdoctor fix cannot honour the option {opt} in a requirements "
                                 f"file; remove it (-i, --extra-index-url, -f, --no-index, --require-hashes, -r and -c "
                                 f"are read)")
        if not value:
            if len(words) < 2:
                raise UsageError(f"{origin}: {opt} needs a value")
            value = words[1]
        kind = _VALUED[opt]
        if kind == "editable" and self.as_pip:
            self.skipped.append((origin, f"{opt} {value}"))
            return
        if kind == "editable":
            raise UsageError(f"{origin}: editable installs (-e {value}) are not supported by envdoctor fix; "
                             f"install them with pip after the fix")
        if kind in ("requirement", "constraint"):
            self.read(path.parent / value, constraint=constraint or kind == "constraint", via=f"{origin}: {opt} {value}")
        elif kind == "index_url":
            self.index_url = value
        elif kind == "extra_index_url":
            self.extra.append(value)
        else:  # find_links: relative to the file when that folder exists there, as pip does
            near = path.parent / value
            self.links.append(str(near.resolve()) if near.exists() else value)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line: continuations joined, comments and blanks dropped."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for i, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = i
        if raw.endswith("\\"):
            buf.append(raw[:-1])
            continue
        buf.append(raw)
        joined = _COMMENT.sub("", "".join(buf)).strip()
        buf = []
        if joined:
            out.append((start, joined))
    if buf and _COMMENT.sub("", "".join(buf)).strip():
        out.append((start, _COMMENT.sub("", "".join(buf)).strip()))
    return out


def _split_hashes(line: str, origin: str) -> tuple[str, tuple[str, ...]]:
    """`name==1.0 --hash=sha256:...`: the requirement text, and its hashes (kept: fix enforces them)."""
    words = line.split()
    keep: list[str] = []
    hashes: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--hash" or word.startswith("--hash="):
            value = word.partition("=")[2] if "=" in word else (words[i + 1] if i + 1 < len(words) else "")
            i += 1 if "=" in word else 2
            m = _HASH.match(value)
            if m is None or len(m.group("hex")) != _HEX_LENGTH[m.group("algo")]:
                raise UsageError(f"{origin}: --hash {value!r} is not ALGO:HEXDIGEST with sha256, sha384 or sha512 "
                                 f"(as pip hash prints it)")
            hashes.append(f"{m.group('algo')}:{m.group('hex').lower()}")
            continue
        keep.append(word)
        i += 1
    return " ".join(keep), tuple(dict.fromkeys(hashes))


def _requirement(text: str, path: Path, origin: str) -> str:
    """The line as a PEP 508 requirement; a URL with #egg=name or a local wheel becomes `name @ url`."""
    try:
        Requirement(text)
        return text
    except InvalidRequirement as e:
        error = str(e).splitlines()[0]
    url, _, marker = text.partition(";")
    url = url.strip()
    egg = _EGG.search(url)
    if "://" in url and egg:
        return f"{egg.group('name')} @ {url}" + (f" ;{marker}" if marker else "")
    wheel = _WHEEL.match(os.path.basename(url))
    if wheel and "://" not in url:
        local = (path.parent / url) if not os.path.isabs(url) else Path(url)
        return f"{wheel.group('name')} @ {local.resolve().as_uri()}" + (f" ;{marker}" if marker else "")
    if "://" in url:
        error = "a URL needs the package name: write 'name @ URL' (or add #egg=name)"
    raise UsageError(f"{origin}: invalid requirement {text!r}: {error}")
