"""The environment fingerprint: it moves when a distribution is installed, removed, upgraded or reinstalled."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from envdoctor._certify import fingerprint as fp
from envdoctor._env import probe as _envprobe


def _fp(site: Path) -> str:
    return fp.fingerprint([str(site)], prefix="/venv", python="cpython-3.12.3")


def test_unchanged_environment_keeps_its_fingerprint(site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    dist("transformers", "4.46.3")
    assert _fp(site) == _fp(site)
    assert _fp(site).startswith("v1:")


def test_install_remove_upgrade_and_reinstall_each_change_it(site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    before = _fp(site)
    added = dist("peft", "0.13.2")
    after_install = _fp(site)
    assert after_install != before
    shutil.rmtree(added)
    assert _fp(site) == before  # removal restores the old set exactly
    old = site / "torch-2.4.0.dist-info"
    old.rename(site / "torch-2.5.0.dist-info")  # an upgrade renames the folder
    assert _fp(site) != before
    (site / "torch-2.5.0.dist-info").rename(old)
    assert _fp(site) == before
    record = old / "RECORD"
    record.write_text("torch/__init__.py,,\n")  # a reinstall rewrites RECORD
    assert _fp(site) != before


def test_python_and_prefix_are_part_of_it(site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    base = fp.fingerprint([str(site)], prefix="/a", python="cpython-3.12.3")
    assert base != fp.fingerprint([str(site)], prefix="/b", python="cpython-3.12.3")
    assert base != fp.fingerprint([str(site)], prefix="/a", python="cpython-3.12.4")


def test_python_id_matches_the_marker_environment() -> None:
    markers = _envprobe.marker_environment()
    assert fp.python_id() == fp.python_id(markers["implementation_name"], markers["python_full_version"])


def test_entries_skip_missing_and_file_path_entries(tmp_path: Path, site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    zipped = tmp_path / "lib.zip"
    zipped.write_bytes(b"PK")
    rows = fp.entries([str(tmp_path / "missing"), str(zipped), str(site), str(site)])
    assert [name for _, name, _ in rows] == ["torch-2.4.0.dist-info"]


def test_same_dirs_is_true_until_the_package_set_can_have_changed(tmp_path: Path, site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    empty = tmp_path / "scripts"
    empty.mkdir()
    recorded = fp.dir_tokens([str(site), str(empty)])
    assert recorded[str(site)][1] is True and recorded[str(empty)][1] is False
    assert fp.same_dirs(recorded, [str(site), str(empty)])
    assert fp.same_dirs(recorded, [str(tmp_path), str(site)])  # a new entry without distributions is harmless
    assert not fp.same_dirs(recorded, [str(empty)])  # the entry that held the distributions is gone
    other = tmp_path / "other-site"
    dist_other = other / "x-1.dist-info"
    dist_other.mkdir(parents=True)
    assert not fp.same_dirs(recorded, [str(site), str(other)])  # a new entry with distributions
    st = os.stat(site)
    dist("peft", "0.13.2")
    os.utime(site, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # coarse clocks: make the change visible
    assert not fp.same_dirs(recorded, [str(site)])


def test_this_interpreter_has_distributions_in_its_fingerprint() -> None:
    rows = fp.entries(sys.path)
    assert any(name.startswith("packaging-") for _, name, _ in rows)
