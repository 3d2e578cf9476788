"""Which package sources a shared file may send the installer to: the user decides, never the file.

A matrix that is not bundled with envdoctor is data anyone may write (`matrix freeze`, `--matrix theirs.toml`).
Its indexes, find-links and direct URLs are used only when the user trusts them (issue 15, finding 3):

- `--trust-sources` trusts the https:// sources the matrix names (a VCS URL over https counts as https);
- `trusted-sources.txt` in envdoctor's config folder (`~/.config/envdoctor/` on Linux) lists URL prefixes,
  one a line, `#` comments; a listed prefix is trusted with any scheme, and it is the only way to trust an
  `http://` or `file://` source.

What the user wrote themselves (the command line's `--index-url`, a requirements file's `-i`/`-f` lines, pip's
configuration) and what envdoctor ships (bundled matrices, `pytorch:<tag>` expanded from the user's
ENVDOCTOR_PYTORCH_INDEX) is trusted as it stands. An untrusted source is still previewed, wheels only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

TRUSTED_SOURCES = "trusted-sources.txt"
TRUSTED_SOURCES_ENV = "ENVDOCTOR_TRUSTED_SOURCES"  # a file to read instead (tests, CI)


def config_dir() -> Path:
    """envdoctor's config folder: platformdirs' user config dir ($XDG_CONFIG_HOME/envdoctor on Linux)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("envdoctor", appauthor=False))


def trusted_sources_file() -> Path:
    """The file that lists trusted source prefixes (ENVDOCTOR_TRUSTED_SOURCES overrides where it is)."""
    override = os.environ.get(TRUSTED_SOURCES_ENV)
    return Path(override) if override else config_dir() / TRUSTED_SOURCES


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    return scheme.split("+", 1)[1] if "+" in scheme else scheme  # git+https -> https


def _same_prefix(url: str, prefix: str) -> bool:
    url, prefix = url.rstrip("/"), prefix.rstrip("/")
    return url == prefix or url.startswith(prefix + "/") or url.startswith(prefix + "@")


@dataclass(frozen=True)
class SourceTrust:
    """The user's trust in sources that a file names: https by `--trust-sources`, any scheme by a listed prefix."""

    https: bool = False  # --trust-sources
    listed: tuple[str, ...] = ()  # prefixes from trusted-sources.txt
    listed_in: str = ""  # the file they were read from (named in refusals)

    @classmethod
    def load(cls, trust_sources: bool = False) -> SourceTrust:
        """The flag plus the user's trusted-sources.txt (a missing file lists nothing)."""
        path = trusted_sources_file()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        listed = tuple(line.split("#", 1)[0].strip() for line in text.splitlines())
        return cls(trust_sources, tuple(x for x in listed if x), str(path))

    def problem(self, url: str) -> str | None:
        """None when a file may send the installer to `url`, else why not and what to do."""
        if any(_same_prefix(url, prefix) for prefix in self.listed):
            return None
        where = self.listed_in or str(trusted_sources_file())
        scheme = _scheme(url)
        if scheme != "https":
            return (f"{url}: a {scheme or 'local'} source is used only when listed in {where} "
                    f"(--trust-sources trusts https only)")
        if not self.https:
            return f"{url}: not trusted; pass --trust-sources, or list it in {where}"
        return None
