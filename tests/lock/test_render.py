"""The lock's renderers: pylock.toml that packaging's PEP 751 reader accepts, a hashed requirements file."""

from __future__ import annotations

import pytest
import tomllib
from packaging.pylock import Pylock
from packaging.version import Version

from envdoctor._lock.model import Artifact, CertificateInfo, Directory, Lock, Locked, Unlocked, Vcs
from envdoctor._lock.validate import validate_pylock
from envdoctor._render.lock import render_pylock, render_requirements, render_summary
from envdoctor.errors import EnvDoctorError

MARKERS = {"sys_platform": "linux", "platform_machine": "x86_64", "implementation_name": "cpython",
           "python_version": "3.11"}
WHEEL = Artifact("file:///wh/Alpha_Pkg-1.0%2Blocal-py3-none-any.whl", {"sha256": "ab" * 32}, 12)


def _lock(**kw: object) -> Lock:
    packages = (
        Locked("Alpha.Pkg", Version("1.0+local"), WHEEL),
        Locked("beta", Version("2.0"), Artifact("https://example.invalid/beta-2.0.tar.gz", {"sha256": "cd" * 32}),
               "installer-record"),
        Locked("mine", Version("0.1"), Directory("/src/mine", editable=True), "installer-record"),
        Locked("tip", Version("3.0"), Vcs("git", "https://example.invalid/tip.git", "e" * 40, "main"), "installer-record"),
    )
    return Lock(Version("3.11.7"), MARKERS, packages, **kw)  # type: ignore[arg-type]


def test_pylock_is_valid_pep_751_with_the_envdoctor_table() -> None:
    cert = CertificateInfo(3, "cuda", "NVIDIA H200", "2026-12-01T20:00:00Z")
    text = render_pylock(_lock(matrix="llama31@2026.11", certificate=cert, skipped=("pip",),
                               unlocked=(Unlocked("odd", "1", "no hash"),)))
    validate_pylock(text)
    data = tomllib.loads(text)
    lock = Pylock.from_dict(data)
    kinds = {p.name: ("wheels" if p.wheels else "archive" if p.archive else "directory" if p.directory else "vcs")
             for p in lock.packages}
    assert kinds == {"alpha-pkg": "wheels", "beta": "archive", "mine": "directory", "tip": "vcs"}
    assert lock.packages[0].wheels[0].filename == "Alpha_Pkg-1.0+local-py3-none-any.whl"  # type: ignore[index]
    assert data["requires-python"] == "==3.11.*" and "sys_platform == 'linux'" in data["environments"][0]
    tool = data["tool"]["envdoctor"]
    assert tool["matrix"] == "llama31@2026.11" and tool["python"] == "3.11.7" and tool["skipped"] == ["pip"]
    assert tool["certificate"] == {"tier": 3, "device": "cuda", "gpu": "NVIDIA H200", "created": "2026-12-01T20:00:00Z"}
    assert tool["unlocked"] == [{"name": "odd", "version": "1", "reason": "no hash"}]


def test_an_invalid_lock_is_never_written() -> None:
    with pytest.raises(EnvDoctorError, match="invalid pylock.toml"):
        validate_pylock('lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\n')


def test_requirements_are_hashed_and_source_trees_commented() -> None:
    text = render_requirements(_lock(matrix="llama31@2026.11"))
    assert f"Alpha.Pkg==1.0+local \\\n    --hash=sha256:{'ab' * 32}\n" in text
    assert f"beta @ https://example.invalid/beta-2.0.tar.gz \\\n    --hash=sha256:{'cd' * 32}\n" in text
    assert "\n# mine @ file:///src/mine  (editable)\n" in text and "\n# tip @ git+https://example.invalid/tip.git@" in text
    assert "# matrix llama31@2026.11" in text


def test_exit_code_and_summary_name_what_was_not_locked() -> None:
    lock = _lock(unlocked=(Unlocked("odd", "1", "this version is not on the configured index"),))
    assert lock.exit_code == 1 and _lock().exit_code == 0
    summary = render_summary(lock, "pylock.toml")
    assert "wrote pylock.toml: 4 packages" in summary
    assert "NOT LOCKED odd 1: this version is not on the configured index" in summary
