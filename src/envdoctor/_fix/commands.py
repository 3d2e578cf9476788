"""The exact installer command lines of a plan: `<python> -m pip …` or `uv pip … --python <python>`."""

from __future__ import annotations

from collections.abc import Sequence

from .._resolver import Sources, find_uv
from .._resolver._pip import pip_command, source_args
from .._resolver._uv import uv_sources_args


def install_command(
    backend: str, python: str, specs: Sequence[str], *, sources: Sources, index_url: str | None = None,
    no_deps: bool = False, constraints: str | None = None,
) -> tuple[str, ...]:
    """One install step: exact pins, an optional index for this group only, --no-deps, the plan's constraints."""
    if backend == "uv":
        uv = find_uv() or "uv"
        cmd = [uv, "pip", "install", "--python", python]
        src = sources if index_url is None else Sources(index_url=index_url, find_links=sources.find_links,
                                                        no_index=False, extra_args=sources.extra_args)
        cmd += uv_sources_args(src, python)
    else:
        cmd = [*pip_command(python), "install", "--no-input", "--progress-bar", "off"]
        cmd += source_args(sources if index_url is None else Sources(
            index_url=index_url, extra_index_urls=sources.extra_index_urls, find_links=sources.find_links,
            extra_args=sources.extra_args))
    if no_deps:
        cmd.append("--no-deps")
    if constraints:
        cmd += ["-c", constraints]
    return tuple(cmd + list(specs))


def uninstall_command(backend: str, python: str, names: Sequence[str]) -> tuple[str, ...]:
    """One removal step."""
    if backend == "uv":
        return (find_uv() or "uv", "pip", "uninstall", "--python", python, *names)
    return (*pip_command(python), "uninstall", "-y", *names)
