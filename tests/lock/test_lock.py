"""`envdoctor lock` end to end: index lookups for the installed versions, and the round trip through uv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.version import Version

from envdoctor._cli import main
from envdoctor._lock import lock_environment
from envdoctor._lock.index import from_index
from envdoctor._resolver.model import Sources
from envdoctor.testing import fake_environment, make_dist


def _venv(path: Path, *, pip: bool = True) -> str:
    subprocess.run([sys.executable, "-m", "venv", *([] if pip else ["--without-pip"]), str(path)], check=True,
                   capture_output=True)
    return str(path / "bin" / "python")


def _freeze(pip_python: str, target: str) -> list[str]:
    """`pip freeze` of target; a direct URL's '#sha256=' is dropped: pip records the hash it checked in
    direct_url.json, uv 0.13 records none (the lock holds it either way)."""
    out = subprocess.run([pip_python, "-m", "pip", "--python", target, "freeze"], check=True, capture_output=True,
                         text=True).stdout
    return sorted(line.split("#sha256=")[0] for line in out.splitlines())


def _uv() -> str:
    from envdoctor._env.probe import find_uv

    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed")
    return uv


def test_the_index_locks_what_it_has_and_names_what_it_lacks(only_wheelhouse: Path) -> None:
    pins = {"alpha": ("alpha", Version("1.0")), "nothere": ("nothere", Version("9.9")), "beta": ("beta", Version("1.0"))}
    locked, unlocked = from_index(None, pins, Sources())  # type: ignore[arg-type]
    assert [(p.name, str(p.version), p.source.filename) for p in locked] == [  # type: ignore[union-attr]
        ("alpha", "1.0", "alpha-1.0-py3-none-any.whl"), ("beta", "1.0", "beta-1.0-py3-none-any.whl")]
    assert [(u.name, u.reason) for u in unlocked] == [("nothere", "this version is not on the configured index")]


@pytest.mark.slow
def test_lock_round_trips_through_uv_pip_sync(tmp_path: Path, only_wheelhouse: Path) -> None:
    """pylock.toml and the hashed requirements file each recreate the environment: the same pip freeze."""
    source = _venv(tmp_path / "source")
    subprocess.run([source, "-m", "pip", "install", "-q", "alpha==1.0", "beta==1.0",
                    str(only_wheelhouse / "gamma-1.0-py3-none-any.whl")], check=True, capture_output=True)
    assert main(["lock", "--python", source, "-o", str(tmp_path / "pylock.toml"), "-m", "llama31"]) == 0
    assert main(["lock", "--python", source, "--format", "requirements", "-o", str(tmp_path / "req.txt")]) == 0
    packages = {p["name"]: p for p in tomllib.loads((tmp_path / "pylock.toml").read_text())["packages"]}
    assert sorted(packages) == ["alpha", "beta", "gamma"]  # pip and setuptools left out, as pip freeze does
    assert all(p["wheels"][0]["hashes"]["sha256"] for p in (packages["alpha"], packages["beta"]))
    assert packages["gamma"]["archive"]["hashes"]["sha256"]  # installed by path: a direct URL stays one
    assert packages["gamma"]["archive"]["path"] == str(only_wheelhouse / "gamma-1.0-py3-none-any.whl")
    uv = _uv()
    want = _freeze(source, source)
    for name, lockfile, extra in (("from-pylock", "pylock.toml", []),
                                  ("from-requirements", "req.txt", ["--require-hashes", "--no-index", "--find-links",
                                                                    str(only_wheelhouse)])):
        target = _venv(tmp_path / name, pip=False)
        subprocess.run([uv, "pip", "sync", "--python", target, "--offline", *extra, str(tmp_path / lockfile)],
                       check=True, capture_output=True)
        assert _freeze(source, target) == want == ["alpha==1.0", "beta==1.0", f"gamma @ {(only_wheelhouse / 'gamma-1.0-py3-none-any.whl').as_uri()}"], name


def test_what_the_index_lacks_is_a_finding(only_wheelhouse: Path, site: Path) -> None:
    """A distribution the index does not have makes the lock exit 1 and is named; the rest is locked."""
    make_dist(site, "alpha", "1.0")
    make_dist(site, "nothere", "9.9")
    make_dist(site, "pip", "23.2.1")
    lock = lock_environment(environment=fake_environment(site), matrix=None)
    assert [p.name for p in lock.packages] == ["alpha"] and lock.skipped == ("pip",)
    assert [(u.name, u.version) for u in lock.unlocked] == [("nothere", "9.9")] and lock.exit_code == 1
