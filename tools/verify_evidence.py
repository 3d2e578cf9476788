"""Check that every bundled rule's evidence says what the rule claims, in the real wheels (run by hand; CI samples it).

    python tools/verify_evidence.py [MATRIX ...] [--wheels DIR ...] [--cache DIR] [--offline] [--urls] [--sample N]

Each evidence string must be a wheel reference (`transformers==4.43.0:transformers/modeling_rope_utils.py:L351
"text"`, or a whole file with `!"text"` it must not contain) or a public URL (envdoctor._matrix.evidence). For each cited wheel, one `pip download --no-deps
--only-binary :all:` (pip's own configured index, nothing else) fetches it into the cache, unless a wheel of that
name and version is already in a `--wheels` folder or the cache; the file is read from the zip, never imported
or run. A citation passes when its lines exist and hold every double-quoted text after it; without quoted text,
one of the words of its note (or of the rule's label) must be on those lines. `--urls` also fetches each URL
(a status below 400 passes). The exit code is 1 when anything fails, with one line per failure.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from envdoctor._matrix.evidence import OUTSIDE, PublicUrl, WheelLine, parse_evidence
from envdoctor._matrix.kinds import every_rule
from envdoctor._matrix.loader import available, load_matrix

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{3,}")


@dataclass(frozen=True)
class Cited:
    """One evidence string and where it is: 'llama31@2026.11 packages[torch]'."""

    where: str
    text: str
    label: str


@dataclass(frozen=True)
class Verdict:
    """The result for one citation: ok, or the reason it fails."""

    cited: Cited
    ok: bool
    reason: str = ""


def citations(refs: Iterable[str]) -> list[Cited]:
    """Every evidence string of the named matrices, each once (a shared fragment's rules are cited by its file)."""
    seen: set[str] = set()
    out: list[Cited] = []
    for ref in refs:
        matrix = load_matrix(ref, use_cache=False)
        for placed in every_rule(matrix):
            for text in placed.evidence:
                if text in seen:
                    continue
                seen.add(text)
                out.append(Cited(f"{matrix.ref} {placed.place}", text, placed.kind.label(placed.rule)))
    return out


def _wheel_name(package: str) -> str:
    return canonicalize_name(package).replace("-", "_")


def find_wheel(package: str, version: str, folders: Iterable[Path]) -> Path | None:
    """A wheel of package==version in one of the folders (any platform tag), or None."""
    prefix = f"{_wheel_name(package)}-{version}-"
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob("*.whl")):
                name = path.name
                if name.lower().startswith(prefix.lower()) or name.replace("-", "_", 1).lower().startswith(prefix.lower()):
                    return path
    return None


def download(package: str, version: str, cache: Path) -> Path | None:
    """pip download --no-deps of one wheel into the cache; None when pip cannot get it."""
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
                           "--dest", str(cache), f"{package}=={version}"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return find_wheel(package, version, [cache])


def check_lines(ref: WheelLine, wheel: Path, label: str) -> str:
    """'' when the wheel's lines hold what the citation claims, else why not."""
    try:
        with zipfile.ZipFile(wheel) as z:
            raw = z.read(ref.path)
    except KeyError:
        return f"{wheel.name} has no file {ref.path}"
    except (OSError, zipfile.BadZipFile) as e:
        return f"cannot read {wheel.name}: {e}"
    whole = raw.decode("utf-8", errors="replace")
    lines = whole.splitlines()
    if ref.end > len(lines):
        return f"{ref.path} has {len(lines)} lines, not {ref.end}"
    text = "\n".join(lines[ref.start - 1:ref.end]) if ref.start else whole
    where = f"L{ref.start}-L{ref.end}" if ref.start else ref.path
    present = [h for h in ref.absent if h in whole]
    if present:
        line = next(i for i, ln in enumerate(lines, 1) if present[0] in ln) if "\n" not in present[0] else 0
        return f"{ref.path} contains {present[0]!r} (line {line}), which the citation says it does not"
    missing = [h for h in ref.contains if h not in text]
    if missing:
        return f"{where} do not contain {missing[0]!r} (they read: {text.strip()[:120]!r})"
    if not ref.contains and not ref.absent and ref.start:
        words = _WORD.findall(ref.note) or _WORD.findall(label)
        if words and not any(w in text for w in words):
            return f"{where} name none of {', '.join(words[:5])} (they read: {text.strip()[:120]!r})"
    return ""


def check_url(url: str) -> str:
    """'' when the page answers with a status below 400, else why not."""
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "envdoctor-verify-evidence"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - https only, by the format
            status = response.status
    except Exception as e:  # any failure to fetch is a failed citation, said in one line
        return f"cannot fetch: {e}"
    return "" if status < 400 else f"HTTP {status}"


def verify(cited: list[Cited], folders: list[Path], cache: Path, *, offline: bool = False,
           urls: bool = False) -> Iterator[Verdict]:
    """A verdict for each citation; wheels are looked up in `folders` and the cache, else downloaded once."""
    wheels: dict[tuple[str, str], Path | None] = {}
    for c in cited:
        if OUTSIDE.search(c.text):
            yield Verdict(c, False, "cites a document outside the repository")
            continue
        ref = parse_evidence(c.text)
        if ref is None:
            yield Verdict(c, False, "neither a wheel reference (pkg==X:path:Lnn) nor a public URL")
        elif isinstance(ref, PublicUrl):
            yield Verdict(c, True, "") if not urls else Verdict(c, not (why := check_url(ref.url)), why)
        else:
            key = (canonicalize_name(ref.package), ref.version)
            if key not in wheels:
                found = find_wheel(ref.package, ref.version, [*folders, cache])
                wheels[key] = found if found is not None or offline else download(ref.package, ref.version, cache)
            wheel = wheels[key]
            if wheel is None:
                yield Verdict(c, False, f"no wheel of {ref.requirement}" + (" here (--offline)" if offline else ""))
            else:
                why = check_lines(ref, wheel, c.label)
                yield Verdict(c, not why, why)


def main(argv: list[str] | None = None) -> int:
    """Verify the evidence of the named bundled matrices (default: all of them); print failures and a summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("matrices", nargs="*", help="matrix references (default: every bundled matrix)")
    parser.add_argument("--wheels", action="append", type=Path, default=[], help="a folder of wheels already here")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "envdoctor-evidence-wheels",
                        help="where downloaded wheels are kept")
    parser.add_argument("--offline", action="store_true", help="download nothing: use the folders only")
    parser.add_argument("--urls", action="store_true", help="fetch each cited URL too")
    parser.add_argument("--sample", type=int, default=0, help="check only N citations, picked at random")
    parser.add_argument("--seed", type=int, default=0, help="the random seed of --sample")
    args = parser.parse_args(argv)
    refs = args.matrices or [e.ref for e in available() if e.bundled]
    cited = citations(refs)
    if args.sample:
        cited = random.Random(args.seed).sample(cited, min(args.sample, len(cited)))
    failed = 0
    for v in verify(cited, args.wheels, args.cache, offline=args.offline, urls=args.urls):
        if not v.ok:
            failed += 1
            print(f"FAIL {v.cited.where}: {v.cited.text}\n     {v.reason}")
    print(f"{len(cited) - failed} of {len(cited)} citations verified in {len(refs)} matrices")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
