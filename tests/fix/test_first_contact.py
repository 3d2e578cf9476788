"""First contact: a fresh venv's setuptools is not the installer; no terminal and no --yes changes nothing;
a CUDA build for a machine without a GPU is said; one plan per fix; a disk too small refuses up front."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtools import build_wheel, freeze

from envdoctor._cli import main
from envdoctor._env.gpu import GpuInfo
from envdoctor._fix import from_requirements, plan_fix
from envdoctor._fix.execute import apply_plan
from envdoctor._resolver import Sources
from envdoctor.errors import FixError


def _req(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def extra_wheels(tmp_path: Path, wheelhouse: Path) -> Path:
    """The session wheelhouse plus wheels that must not reach other tests: a newer setuptools and pip, and a
    fake CUDA torch (a CUDA build cannot exist here; its wheel is a relabelled stand-in)."""
    folder = tmp_path / "extra"
    folder.mkdir()
    build_wheel(folder, "setuptools", "84.2.1", files={"setuptools/__init__.py": "__version__ = '84.2.1'\n"})
    build_wheel(folder, "pip", "99.0", files={"pip/__init__.py": "__version__ = '99.0'\n"})
    build_wheel(folder, "torch", "2.4.0+cu121", files={"torch/__init__.py": "__version__ = '2.4.0+cu121'\n"})
    return folder


def _sources(wheelhouse: Path, extra: Path) -> Sources:
    return Sources(no_index=True, find_links=(str(wheelhouse), str(extra)))


def test_a_fresh_venvs_setuptools_is_not_protected(tmp_path, make_venv, wheelhouse, extra_wheels) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()  # `python -m venv`: pip 23.2 and setuptools 65.5 inside
    assert "setuptools==65.5.0" in freeze(python).splitlines()
    target = from_requirements(_req(tmp_path, "setuptools==84.2.1\n"))
    plan = plan_fix(target, python=python, backend="pip", sources=_sources(wheelhouse, extra_wheels))
    assert plan.ok, plan.problems
    assert "setuptools" not in plan.protected
    result = apply_plan(plan, target)
    assert result.ok, result.reason
    assert "setuptools==84.2.1" in freeze(python).splitlines()


def test_the_pip_that_runs_the_steps_stays_protected(tmp_path, make_venv, wheelhouse, extra_wheels) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    target = from_requirements(_req(tmp_path, "alpha==1.0\n"))
    plan = plan_fix(target, python=python, backend="pip", sources=_sources(wheelhouse, extra_wheels),
                    protect=("alpha",))
    assert plan.ok  # alpha is absent: protecting it guards an installed version only
    python2 = make_venv("alpha==1.0", name="v2")
    plan = plan_fix(from_requirements(_req(tmp_path, "alpha==2.0\n")), python=python2, backend="pip",
                    sources=_sources(wheelhouse, extra_wheels), protect=("alpha",))
    assert not plan.ok and "protected by --protect" in plan.problems[0]
    assert "pip" in plan.protected  # the backend is pip: the target's pip runs every step
    beside = plan_fix(from_requirements(_req(tmp_path, "alpha==2.0\nbeta==2.0\n")), python=python2, backend="pip",
                      sources=_sources(wheelhouse, extra_wheels))
    assert beside.ok and "pip" in beside.protected


def test_without_yes_and_without_a_terminal_nothing_is_applied(tmp_path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    before = freeze(python)
    rc = main(["fix", "-r", str(_req(tmp_path, "alpha==2.0\n")), "--python", python, "--no-index", "--find-links",
               str(wheelhouse)])  # pytest's stdin is not a terminal: like `fix 2>&1 | tee log` or `!envdoctor fix`
    err = capsys.readouterr().err
    assert rc == 1
    assert "alpha                        1.0 -> 2.0" in err and "pass --yes to apply" in err
    assert freeze(python) == before


def test_a_cuda_build_for_a_machine_without_a_gpu_is_said_fake_gpu(tmp_path, make_venv, wheelhouse, extra_wheels) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    target = from_requirements(_req(tmp_path, "torch==2.4.0+cu121\n"))
    plan = plan_fix(target, python=python, backend="pip", sources=_sources(wheelhouse, extra_wheels),
                    gpu=lambda: GpuInfo(False, reason="fake: no NVIDIA driver"))
    assert plan.ok
    assert any("no NVIDIA GPU (fake: no NVIDIA driver)" in w and "torch 2.4.0+cu121" in w for w in plan.warnings)
    with_gpu = plan_fix(target, python=python, backend="pip", sources=_sources(wheelhouse, extra_wheels),
                        gpu=lambda: GpuInfo(True, "cuda", "fake T4", count=1))
    assert not any("NVIDIA" in w for w in with_gpu.warnings)


def test_fix_yes_plans_once(tmp_path, make_venv, wheelhouse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import envdoctor._fix.plan as plan_module

    calls = []
    real = plan_module.resolve_target

    def counting(*args, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(plan_module, "resolve_target", counting)
    python = make_venv("alpha==1.0")
    rc = main(["fix", "-r", str(_req(tmp_path, "alpha==2.0\n")), "--python", python, "--no-index", "--find-links",
               str(wheelhouse), "--yes"])
    assert rc == 0 and len(calls) == 1


def test_a_disk_too_small_for_the_plan_refuses_up_front_fake_disk(tmp_path, make_venv, wheelhouse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("bulky==1.0")
    before = freeze(python)
    target = from_requirements(_req(tmp_path, "bulky==2.0\n"))
    plan = plan_fix(target, python=python, backend="pip", sources=Sources(no_index=True, find_links=(str(wheelhouse),)))
    assert plan.disk_bytes > 0  # the wheel's size on disk, plus its unpacked files
    monkeypatch.setattr("envdoctor._fix.space.free_bytes", lambda path: 2**20)  # a disk with 1 MB left
    with pytest.raises(FixError, match=r"^disk full: the plan needs about \d+ MB .* 1 MB are free.*nothing was changed"):
        apply_plan(plan, target)
    assert freeze(python) == before


def test_a_full_disk_while_the_snapshot_is_kept_changes_nothing(tmp_path, make_venv, wheelhouse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    from envdoctor._fix.state import journal_path
    from envdoctor._fix.workdir import workdir_for

    python = make_venv("alpha==1.0")
    before = freeze(python)
    target = from_requirements(_req(tmp_path, "alpha==2.0\n"))
    plan = plan_fix(target, python=python, backend="pip", sources=Sources(no_index=True, find_links=(str(wheelhouse),)))

    def full(path, data, root=None):  # type: ignore[no-untyped-def]  # ENOSPC injected into the snapshot's own write
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("envdoctor._fix.snapshot.private_write", full)
    with pytest.raises(FixError, match="^disk full: cannot keep the snapshot .*nothing was changed"):
        apply_plan(plan, target)
    work = workdir_for(plan.prefix)
    assert freeze(python) == before
    assert not journal_path(work).exists() and not list(work.glob("snapshot-*"))
