"""The pip and uv backends: their report parsers on recorded output, their commands, and choosing one once."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from envdoctor._resolver import Sources, find_uv, select_backend
from envdoctor._resolver._pip import PipBackend, read_report
from envdoctor._resolver._uv import UvBackend, read_changes, read_pinned
from envdoctor.errors import UsageError

RECORDED = Path(__file__).parent / "recorded"


@pytest.mark.parametrize("tool", ["pip-23.2.1", "pip-25.3"])
def test_pip_report_lists_every_install_with_its_requirements(tool: str) -> None:
    data = json.loads((RECORDED / tool / "report.json").read_text(encoding="utf-8"))
    installs = {i.name: i for i in read_report(data, {"gamma"})}
    assert {n: str(i.version) for n, i in installs.items()} == {"gamma": "1.0", "beta": "1.0", "alpha": "1.0"}
    assert installs["gamma"].requested and not installs["alpha"].requested
    assert installs["beta"].requires == ("alpha<2",)
    assert installs["alpha"].url == "file:///wheelhouse/alpha-1.0-py3-none-any.whl"


@pytest.mark.parametrize("tool", ["uv-0.4.30", "uv-0.13.9"])
def test_uv_dry_run_lists_installs_and_removals(tool: str) -> None:
    installs, removes = read_changes((RECORDED / tool / "dryrun.txt").read_text(encoding="utf-8"), {"beta"})
    assert [(i.name, str(i.version), i.requested) for i in installs] == [("alpha", "2.0", False), ("beta", "2.0", True)]
    assert removes == (("alpha", Version("1.0")), ("beta", Version("1.0")))


@pytest.mark.parametrize("tool", ["uv-0.4.30", "uv-0.13.9"])
def test_uv_compile_lists_the_pins(tool: str) -> None:
    pins = read_pinned((RECORDED / tool / "compile.txt").read_text(encoding="utf-8"), {"gamma"})
    assert [(i.name, str(i.version), i.requested) for i in pins] == [
        ("alpha", "1.0", False), ("beta", "1.0", False), ("gamma", "1.0", True)]


def test_each_backend_spells_its_own_commands_and_environment() -> None:
    src = Sources(no_index=True, find_links=("/wh",))
    pip = PipBackend()
    cmd = pip.install_command(sys.executable, ["alpha==2.0"], sources=src, no_deps=True, constraints="/c.txt")
    assert cmd[0] == sys.executable and cmd[1:] == ("-m", "pip", "install", "--no-input", "--progress-bar", "off", "--no-index",
                       "--find-links", "/wh", "--no-deps", "-c", "/c.txt", "alpha==2.0")
    assert pip.uninstall_command(sys.executable, ["delta"])[-3:] == ("uninstall", "-y", "delta")
    assert pip.environment()["PIP_NO_INPUT"] == "1"
    uv = UvBackend("/opt/uv")
    cmd = uv.install_command("/venv/bin/python", ["alpha==2.0"], sources=src, index_url="https://idx/simple")
    assert cmd[:5] == ("/opt/uv", "pip", "install", "--python", "/venv/bin/python")
    assert "--no-index" not in cmd and cmd[cmd.index("--index-url") + 1] == "https://idx/simple"
    assert uv.uninstall_command("/p", ["delta"]) == ("/opt/uv", "pip", "uninstall", "--python", "/p", "delta")
    assert uv.environment()["UV_PYTHON_DOWNLOADS"] == "never"


def test_backend_is_chosen_once_by_one_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "uv"
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    monkeypatch.setenv("ENVDOCTOR_UV", str(fake))
    assert find_uv() == str(fake)
    assert select_backend("auto").name == "pip"  # there but it cannot run (not executable): pip is the fallback
    runnable = tmp_path / "bin" / "uv"
    runnable.parent.mkdir()
    runnable.write_text("#!/bin/sh\n", encoding="utf-8")
    runnable.chmod(0o755)
    monkeypatch.setenv("ENVDOCTOR_UV", str(runnable))
    chosen = select_backend("auto")
    assert isinstance(chosen, UvBackend) and chosen.executable == str(runnable)
    assert select_backend("pip").name == "pip"
    monkeypatch.setenv("ENVDOCTOR_UV", str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(os.path, "isfile", lambda p: False)  # no uv next to the interpreter either
    assert select_backend("auto").name == "pip"
    with pytest.raises(UsageError, match="--backend uv: uv is not installed"):
        select_backend("uv")
    with pytest.raises(UsageError, match="--backend conda"):
        select_backend("conda")


def test_the_environment_probe_and_the_resolver_find_the_same_uv() -> None:
    from envdoctor._env.probe import collect

    assert collect()["uv"] == find_uv()


def test_hashed_steps_read_a_file_with_require_hashes_and_no_index_is_a_best_match() -> None:
    from envdoctor._resolver import Requested, hashed_requirements
    from envdoctor._resolver._uv import uv_sources_args
    from envdoctor._resolver.backend import Query

    src = Sources(index_url="https://a.example/simple", extra_index_urls=("https://b.example/simple",))
    for backend in (PipBackend(), UvBackend("/opt/uv")):
        cmd = backend.install_command("/venv/bin/python", ["alpha==1.0"], sources=src, hashed="/w/hashed-1.txt")
        assert cmd[-3:] == ("--require-hashes", "-r", "/w/hashed-1.txt") and "alpha==1.0" not in cmd
    # a best match across indexes lets any extra index shadow a name (issue 15, finding 3)
    assert "--index-strategy" not in uv_sources_args(src) and "unsafe-best-match" not in uv_sources_args(src)
    text = hashed_requirements(["Alpha==1.0", "beta==2.0"], {"alpha": ("sha256:" + "a" * 64,)})
    assert text == f"Alpha==1.0 --hash=sha256:{'a' * 64}\nbeta==2.0\n"
    assert Query((Requested("alpha==1.0", hashes=("sha256:" + "a" * 64,)), Requested("beta==2.0"))).require_hashes
    assert not Query((Requested("alpha==1.0"),)).require_hashes


def test_a_wheels_only_query_spells_it_once_for_each_tool() -> None:
    from envdoctor._resolver import Requested
    from envdoctor._resolver._pip import _target_args
    from envdoctor._resolver.backend import Query

    ask = (Requested("alpha==1.0"),)
    assert "--only-binary=:all:" in _target_args(Query(ask, only_binary=True), "/tmp")
    assert _target_args(Query(ask, python_version="3.12", only_binary=True), "/tmp").count("--only-binary=:all:") == 1
    uv = UvBackend("/opt/uv")
    assert "--no-build" in uv._resolve_command(Query(ask, only_binary=True))
    declared = uv._resolve_command(Query(ask, python_version="3.12", against_installed=False, only_binary=True))
    assert "--only-binary" in declared and "--no-build" not in declared  # uv refuses the two together


def test_uv_is_given_pips_configured_constraints(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from envdoctor._resolver._pipconf import pip_constraints
    from envdoctor._resolver._uv import uv_sources_args
    from envdoctor._resolver.model import Sources

    conf = tmp_path / "pip.conf"
    cons = tmp_path / "constraints.txt"
    cons.write_text("torch<=2.14.1\n", encoding="utf-8")
    conf.write_text(f"[global]\nconstraint = {cons}\n", encoding="utf-8")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.delenv("PIP_CONSTRAINT", raising=False)
    monkeypatch.delenv("UV_CONSTRAINT", raising=False)
    assert str(cons) in pip_constraints()
    args = uv_sources_args(Sources())
    assert args[args.index("-c") + 1] == str(cons)  # so uv plans the versions pip would
    monkeypatch.setenv("UV_CONSTRAINT", str(cons))
    assert pip_constraints() == ()  # the user's own uv constraints win


def test_uv_mirrors_pips_best_match_over_the_users_own_pip_configuration(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from envdoctor._resolver._uv import uv_sources_args
    from envdoctor._resolver.model import Sources

    links = tmp_path / "wheels"
    links.mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {links}\n", encoding="utf-8")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "UV_INDEX_URL", "UV_INDEX",
                "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_DEFAULT_INDEX"):
        monkeypatch.delenv(var, raising=False)
    args = uv_sources_args(Sources())  # nothing named by a matrix: pip's own configuration, as pip reads it
    assert args[args.index("--find-links") + 1] == str(links)
    assert args[args.index("--index-strategy") + 1] == "unsafe-best-match"  # pip merges find-links with the index
    named = uv_sources_args(Sources(find_links=(str(links),)))  # a source a matrix or file names: first index only
    assert "--index-strategy" not in named
