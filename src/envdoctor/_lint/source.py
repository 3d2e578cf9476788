"""Read .py files and .ipynb notebooks as Python units; mask notebook magics so the code parses, and restore them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

_MAGIC = re.compile(r"^(\s*)([!%].*|[\w.]+\?{1,2}\s*)$")  # !shell, %line magic, obj? help
_MASK = re.compile(r"^(\s*)pass  # envdoctor-magic-(\d+)$")
_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", "site-packages", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class Unit:
    """One piece of Python to lint: a whole .py file or one notebook code cell."""

    path: str
    cell: int | None  # 1-based code cell number in a notebook
    code: str
    magics: tuple[str, ...] = ()  # the original lines the masks stand for, by mask number

    @property
    def where(self) -> str:
        """'path', or 'path [cell N]' in a notebook."""
        return self.path if self.cell is None else f"{self.path} [cell {self.cell}]"


def files(paths: Iterable[str]) -> list[Path]:
    """The .py/.ipynb files named, folders searched recursively (virtualenvs and caches skipped)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix in (".py", ".ipynb") and f.is_file() and not _SKIP_DIRS & set(f.parts):
                    out.append(f)
        elif p.is_file():
            if p.suffix not in (".py", ".ipynb"):
                raise UsageError(f"lint: {p}: not a .py file or .ipynb notebook")
            out.append(p)
        else:
            raise UsageError(f"lint: {p}: no such file or folder")
    unique: dict[Path, Path] = {}  # `lint a.py ./a.py` or `lint . train.py`: each file once, first spelling kept
    for f in out:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def mask(code: str) -> tuple[str, tuple[str, ...]]:
    """Replace IPython magic lines by `pass` markers (same indentation) so that the cell parses.

    A magic continued with a trailing backslash (`%pip install \\` then one package a line) is masked to its
    last line, each continuation line at the magic's own indentation.
    """
    originals: list[str] = []
    lines = code.split("\n")
    indent: str | None = None  # set while a magic continues on the next line (`%pip install \`)
    for i, line in enumerate(lines):
        m = _MAGIC.match(line)
        if indent is None and not (m and line.strip() and not line.lstrip().startswith("#")):
            continue
        if indent is None and m:
            indent = m.group(1)
        lines[i] = f"{indent}pass  # envdoctor-magic-{len(originals)}"  # a continuation keeps the magic's indent
        originals.append(line)
        if not line.rstrip().endswith("\\"):
            indent = None
    return "\n".join(lines), tuple(originals)


def unmask(code: str, originals: tuple[str, ...]) -> str:
    """Put the original magic lines back."""
    lines = code.split("\n")
    for i, line in enumerate(lines):
        m = _MASK.match(line)
        if m and int(m.group(2)) < len(originals):
            lines[i] = originals[int(m.group(2))]
    return "\n".join(lines)


def read_notebook(path: Path) -> dict:  # type: ignore[type-arg]
    """The notebook's JSON, checked to be a dict with a list of cell objects; anything else is a UsageError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"lint: {path}: cannot read: {e}") from e
    except ValueError as e:
        raise UsageError(f"lint: {path}: not a notebook (invalid JSON: {e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UsageError(f"lint: {path}: not a notebook (no 'cells' list)")
    for i, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict):
            raise UsageError(f"lint: {path}: not a notebook (cells[{i}] is not an object but {type(cell).__name__})")
    return data


def cell_source(cell: dict) -> str:  # type: ignore[type-arg]
    """A cell's source as one string (notebooks store a list of lines or a string)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def units(path: Path) -> Iterator[Unit]:
    """The Python units of one file."""
    if path.suffix == ".ipynb":
        n = 0
        for cell in read_notebook(path)["cells"]:
            if cell.get("cell_type") != "code":
                continue
            n += 1
            src = cell_source(cell)
            if src.lstrip().startswith("%%"):
                continue  # a cell magic (%%bash, %%writefile ...) is not Python
            code, originals = mask(src)
            yield Unit(str(path), n, code, originals)
        return
    try:
        yield Unit(str(path), None, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"lint: {path}: cannot read: {e}") from e
