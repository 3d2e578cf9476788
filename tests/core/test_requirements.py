"""The requirements-file reader: -r/-c/-i/-f honoured, hashes kept (all or none), markers kept, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from envdoctor._requirements import read_requirements
from envdoctor.errors import UsageError


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_includes_constraints_options_continuations_and_origins(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    _write(tmp_path, "sub/base.txt", "alpha==2.0\n")
    _write(tmp_path, "sub/cons.txt", "beta<2\n")
    req = _write(tmp_path, "requirements.txt", "-r sub/base.txt\n-c sub/cons.txt\n--index-url http://127.0.0.1:9/s\n"
                 "-f wheels\nbeta \\\n  # a comment\nwh/gamma-1.0-py3-none-any.whl ; python_version > '3'\n"
                 "delta==1.0 ; python_version < '3.0'  # a marker for another interpreter\n")
    parsed = read_requirements(req)
    assert [(ln.requirement, ln.origin) for ln in parsed.lines][:3] == [
        ("alpha==2.0", "base.txt:1"), ("beta", "requirements.txt:5"),
        (f"gamma @ {(tmp_path / 'wh/gamma-1.0-py3-none-any.whl').as_uri()} ; python_version > '3'", "requirements.txt:7")]
    assert parsed.lines[3].requirement == "delta==1.0 ; python_version < '3.0'"  # kept: the target decides
    assert [c.requirement for c in parsed.constraints] == ["beta<2"]
    assert parsed.sources.index_url == "http://127.0.0.1:9/s"
    assert parsed.sources.find_links == (str(tmp_path / "wheels"),)


@pytest.mark.parametrize("text, needle", [
    pytest.param("alpha >>= 1\n", "req.txt:1: invalid requirement 'alpha >>= 1': Expected", id="bad-line"),
    pytest.param("alpha\nbeta\nalpha==2\n", "req.txt:3: alpha is already required at req.txt:1", id="twice"),
    pytest.param("-e .\n", "req.txt:1: editable installs (-e .)", id="editable"),
    pytest.param("--trusted-host h\nalpha\n", "req.txt:1: envdoctor fix cannot honour the option --trusted-host",
                 id="unknown-option"),
    pytest.param("-r nothere.txt\n", "req.txt:1: -r nothere.txt: no such requirements file", id="missing-include"),
    pytest.param("git+https://host.invalid/x.git\n", "a URL needs the package name", id="nameless-url"),
])
def test_bad_lines_are_one_line_naming_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(UsageError) as e:
        read_requirements(_write(tmp_path, "req.txt", text))
    assert needle in str(e.value) and "\n" not in str(e.value) and "Traceback" not in str(e.value)


SHA_A, SHA_B = "a" * 64, "B" * 64


def test_hashes_are_kept_on_their_line_and_switch_on_hash_checking(tmp_path: Path) -> None:
    # Issue 15, finding 2: the reader dropped --hash, so a tampered artifact installed with exit 0.
    req = _write(tmp_path, "req.txt", f"alpha==1.0 \\\n    --hash=sha256:{SHA_A} --hash sha256:{SHA_B}\n"
                                      f"beta==2.0 ; python_version > '3' --hash=sha256:{SHA_A}\n")
    parsed = read_requirements(req)
    assert parsed.require_hashes
    assert [(ln.requirement, ln.hashes) for ln in parsed.lines] == [
        ("alpha==1.0", (f"sha256:{SHA_A}", f"sha256:{SHA_B.lower()}")),
        ("beta==2.0 ; python_version > '3'", (f"sha256:{SHA_A}",))]
    assert parsed.lines[0].hashed == f"alpha==1.0 --hash=sha256:{SHA_A} --hash=sha256:{SHA_B.lower()}"
    assert not read_requirements(_write(tmp_path, "plain.txt", "alpha==1.0\n")).require_hashes


@pytest.mark.parametrize("text, needles", [
    pytest.param(f"alpha==1.0 --hash=sha256:{SHA_A}\nbeta==2.0\ngamma>=1 --hash=sha256:{SHA_A}\n",
                 ["req.txt:2: beta has no --hash", "req.txt:3: gamma>=1 is not pinned with ==",
                  "req.txt:1 has a --hash"], id="all-or-nothing"),
    pytest.param("--require-hashes\nalpha==1.0\n", ["req.txt:2: alpha has no --hash", "the file says --require-hashes"],
                 id="require-hashes-option"),
    pytest.param("alpha==1.0 --hash=sha256:abc\n", ["req.txt:1: --hash 'sha256:abc' is not ALGO:HEXDIGEST"],
                 id="short-digest"),
    pytest.param(f"alpha==1.0 --hash=md5:{SHA_A[:32]}\n", ["req.txt:1: --hash 'md5:"], id="weak-algorithm"),
])
def test_hash_checking_mode_names_every_line_it_refuses(tmp_path: Path, text: str, needles: list[str]) -> None:
    with pytest.raises(UsageError) as e:
        read_requirements(_write(tmp_path, "req.txt", text))
    assert all(n in str(e.value) for n in needles), str(e.value)
    assert "\n" not in str(e.value)
