"""Read pip's own index and constraint configuration (pip.conf, PIP_* variables) so that uv sees the same ones.

uv does not read pip.conf; without this, `--backend uv` could resolve against a different index than
`--backend pip` on the same machine. Only the four source settings are read; nothing else of pip's.
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

from .model import Sources

_UV_SOURCE_VARS = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_FIND_LINKS",
                   "UV_NO_INDEX")


def _files(prefix: str | None) -> list[Path]:
    """pip's config files in pip's precedence order (later wins), see `pip config debug`."""
    if os.environ.get("PIP_CONFIG_FILE") == os.devnull:
        return []
    home = Path.home()
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    files = [Path(d) / "pip" / "pip.conf" for d in dirs] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf", Path(xdg) / "pip" / "pip.conf"]
    files.append(Path(prefix or sys.prefix) / "pip.conf")
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    return files


def _read(prefix: str | None, keys: tuple[str, ...]) -> dict[str, str]:
    """The values of `keys` in pip's config files ([global], then [install]; later wins), then PIP_* variables."""
    values: dict[str, str] = {}
    for path in _files(prefix):
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError):
            continue  # a broken pip.conf is pip's problem to report, not ours
        for section in ("global", "install"):
            if parser.has_section(section):
                for key in keys:
                    if parser.has_option(section, key):
                        values[key] = parser.get(section, key)
    for key in keys:
        env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if env is not None:
            values[key] = env
    return values


def pip_sources(prefix: str | None = None) -> Sources:
    """The index settings pip would use for an environment at `prefix`."""
    values = _read(prefix, ("index-url", "extra-index-url", "find-links", "no-index"))
    no_index = values.get("no-index", "").strip().lower() in ("1", "true", "yes", "on")
    return Sources(
        index_url=values.get("index-url") or None,
        extra_index_urls=tuple(values.get("extra-index-url", "").split()),
        find_links=tuple(values.get("find-links", "").split()),
        no_index=no_index,
    )


def pip_constraints(prefix: str | None = None) -> tuple[str, ...]:
    """The constraints files pip is configured with (`constraint` in pip.conf, PIP_CONSTRAINT), which uv does
    not read: without them `--backend uv` plans other versions than `--backend pip` (issue 14)."""
    if os.environ.get("UV_CONSTRAINT"):
        return ()  # the user configured uv's own constraints
    return tuple(_read(prefix, ("constraint",)).get("constraint", "").split())


def uv_has_own_sources() -> bool:
    """True when the user configured uv's indexes directly; then pip's configuration is not carried over."""
    return any(os.environ.get(v) for v in _UV_SOURCE_VARS)
