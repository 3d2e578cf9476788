"""The snapshot as PEP 751 pylock.toml: valid by packaging's reader, and real uv restores the pre-fix state from it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import tomllib
from fixtools import freeze

from envdoctor._cli import main
from envdoctor._fix import apply_plan, from_requirements, plan_fix
from envdoctor._resolver import Sources, find_uv

pytest.importorskip("packaging.pylock")  # packaging 25.0 and newer read PEP 751 lock files


def test_the_snapshot_is_a_pylock_that_uv_restores_by_hand(tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    from envdoctor._lock.validate import validate_pylock

    python = make_venv("bulky==1.0", "alpha==1.0")
    before = freeze(python)
    req = tmp_path / "requirements.txt"
    req.write_text("bulky==2.0\nalpha==2.0\ndelta==1.0\n", encoding="utf-8")
    target = from_requirements(req)
    result = apply_plan(plan_fix(target, python=python, backend="pip",
                                 sources=Sources(no_index=True, find_links=(str(wheelhouse),))), target)
    assert result.ok, result.reason
    lock = Path(result.snapshot) / "pylock.toml"
    validate_pylock(lock.read_text(encoding="utf-8"))
    data = tomllib.loads(lock.read_text(encoding="utf-8"))
    assert {(p["name"], p["version"]) for p in data["packages"]} == {("alpha", "1.0"), ("bulky", "1.0")}
    assert data["tool"]["envdoctor"]["remove"] == ["delta"]
    # By hand, as the closing note says: uv installs the lock offline, then the added package goes.
    uv = find_uv()
    assert uv
    subprocess.run([uv, "pip", "install", "--python", python, "--offline", "--no-deps", "-r", str(lock)], check=True,
                   capture_output=True, text=True)
    subprocess.run([uv, "pip", "uninstall", "--python", python, "delta"], check=True, capture_output=True)
    restored = freeze(python)
    # uv records the lock's wheels as direct references; the versions are the point.
    plain = "\n".join(sorted(((ln.split(" @ ")[0] + "==" + _version(ln)) if " @ " in ln else ln
                              for ln in restored.splitlines()), key=str.lower))
    assert plain == before, restored


def _version(line: str) -> str:
    return line.rsplit("/", 1)[-1].split("-")[1]


def test_rollback_after_a_finished_fix_uses_the_packed_wheels_offline(tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("bulky==1.0", "alpha==1.0")
    before = freeze(python)
    req = tmp_path / "requirements.txt"
    req.write_text("bulky==2.0\ndelta==1.0\n", encoding="utf-8")
    assert main(["fix", "-r", str(req), "--python", python, "--no-index", "--find-links", str(wheelhouse),
                 "--yes", "--backend", "pip"]) == 0
    assert freeze(python) != before
    capsys.readouterr()
    assert main(["fix", "--rollback", "--python", python]) == 0  # no index given: the wheels are the lock's
    out = capsys.readouterr().out
    assert "rolled back (verified" in out and "restored bulky" in out
    assert freeze(python) == before
