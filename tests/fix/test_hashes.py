"""Hashes a requirements file carries are kept and enforced (pip's --require-hashes), with pip and with uv."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from fixtools import build_wheel, freeze

from envdoctor._cli import main
from envdoctor._fix import FixRequest, FixSession, Outcome
from envdoctor._fix.plan import Plan
from envdoctor._resolver import Sources

WRONG = "sha256:" + "0" * 64


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _house(tmp_path: Path, wheelhouse: Path) -> Path:
    """A private copy of alpha and beta's wheels (a test below tampers with it)."""
    house = tmp_path / "house"
    house.mkdir()
    for whl in wheelhouse.glob("*.whl"):
        if whl.name.startswith(("alpha-", "beta-")):
            shutil.copy2(whl, house / whl.name)
    return house


def _req(tmp_path: Path, house: Path, beta_hash: str | None = None) -> str:
    alpha, beta = house / "alpha-1.0-py3-none-any.whl", house / "beta-1.0-py3-none-any.whl"
    path = tmp_path / "requirements.txt"
    path.write_text(f"alpha==1.0 --hash={_sha(alpha)}\nbeta==1.0 \\\n    --hash={beta_hash or _sha(beta)}\n",
                    encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_a_wrong_hash_makes_fix_refuse_and_change_nothing(backend, tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    # Issue 15, finding 2: this file installed with exit 0 (the reader dropped --hash; uv's dry run never compares).
    house = _house(tmp_path, wheelhouse)
    python = make_venv()
    before = freeze(python)
    rc = main(["fix", "-r", _req(tmp_path, house, WRONG), "--python", python, "--no-index", "--find-links", str(house),
               "--yes", "--backend", backend])
    out = capsys.readouterr()
    assert rc == 1, out
    assert "DO NOT MATCH THE HASHES" in out.out + out.err and "requirements.txt:2" in out.out + out.err
    assert freeze(python) == before


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_each_install_step_enforces_the_hashes(backend, tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    # The dry run checked the artifacts; the install step checks them again (a swap between the two is caught).
    house = _house(tmp_path, wheelhouse)
    python = make_venv()
    before = freeze(python)
    request = FixRequest(requirements=_req(tmp_path, house), python=python, backend=backend,
                         sources=Sources(no_index=True, find_links=(str(house),)), verify_imports=False)

    def tamper(plan: Plan) -> bool:
        (step,) = [s for s in plan.steps if s.kind == "install"]
        assert step.command[-3:] == ("--require-hashes", "-r", step.hashed)
        assert f"--hash={_sha(house / 'alpha-1.0-py3-none-any.whl')}" in step.hashed_text
        build_wheel(house, "beta", "1.0", files={"beta/__init__.py": "print('swapped')\n"})
        return True

    done = FixSession(request, confirm=tamper).run()
    assert done.outcome is Outcome.FAILED and done.result is not None and done.result.rollback is not None
    assert "hash" in done.result.reason.lower() or "hash" in Path(done.result.log).read_text(encoding="utf-8").lower()
    assert freeze(python) == before


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_correct_hashes_install(backend, tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    house = _house(tmp_path, wheelhouse)
    python = make_venv()
    request = FixRequest(requirements=_req(tmp_path, house), python=python, backend=backend,
                         sources=Sources(no_index=True, find_links=(str(house),)), verify_imports=False)
    done = FixSession(request).run()
    assert done.outcome is Outcome.APPLIED, done.plan.problems
    assert {"alpha==1.0", "beta==1.0"} <= set(freeze(python).splitlines())
    assert Path(done.plan.steps[0].hashed).read_text(encoding="utf-8") == done.plan.steps[0].hashed_text


def _matrix(tmp_path: Path, house: Path, beta_hash: str) -> str:
    alpha = house / "alpha-1.0-py3-none-any.whl"
    path = tmp_path / "hashed.toml"
    path.write_text(
        'schema_version = 1\nname = "hashed"\nversion = "1.0"\n\n'
        f'[[packages]]\nname = "alpha"\nspecifier = "==1.0"\nreason = "r"\nhashes = ["{_sha(alpha)}"]\n\n'
        f'[[packages]]\nname = "beta"\nspecifier = "==1.0"\nreason = "r"\nhashes = ["{beta_hash}"]\n', encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_a_matrix_that_carries_hashes_is_enforced(backend, tmp_path, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    house = _house(tmp_path, wheelhouse)
    python = make_venv()
    before = freeze(python)
    src = Sources(no_index=True, find_links=(str(house),))
    wrong = FixSession(FixRequest(matrix=_matrix(tmp_path, house, WRONG), python=python, backend=backend,
                                  sources=src, verify_imports=False)).run()
    assert wrong.outcome is not Outcome.APPLIED and freeze(python) == before
    right = FixSession(FixRequest(matrix=_matrix(tmp_path, house, _sha(house / "beta-1.0-py3-none-any.whl")),
                                  python=python, backend=backend, sources=src, verify_imports=False)).run()
    assert right.outcome is Outcome.APPLIED, right.plan.problems
    assert {"alpha==1.0", "beta==1.0"} <= set(freeze(python).splitlines())


def test_a_malformed_hash_in_a_matrix_is_one_clear_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.toml"
    path.write_text('schema_version = 1\nname = "bad"\nversion = "1.0"\n\n[[packages]]\nname = "alpha"\n'
                    'reason = "r"\nhashes = ["md5:abc"]\n', encoding="utf-8")
    assert main(["check", "--matrix", str(path)]) == 2
    err = capsys.readouterr().err
    assert "packages[0].hashes" in err and "sha256" in err and "Traceback" not in err
