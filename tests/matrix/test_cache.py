"""The compiled-matrix cache is state to verify: planted entries, keys and symlinks never change what loads.

Issue 15, finding 4: a planted entry made `check` report OK and put a planted index into the default fix plan.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from envdoctor._check import check_environment
from envdoctor._fix import from_matrix
from envdoctor._matrix import cache, record
from envdoctor._matrix.loader import _chain, load_matrix
from envdoctor.testing import fake_environment

R = 'reason = "r"\nevidence = ["e"]\n'
INDEX = "https://download.pytorch.org/whl/cu118"
TORCH = f'[[packages]]\nname = "torch"\nspecifier = "==2.4.0"\nindex_url = "{INDEX}"\n{R}'
PLANTED_INDEX = "https://evil.example/simple"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="permission bits and O_NOFOLLOW are POSIX")


def _entries(cache_root: Path) -> list[Path]:
    return sorted((cache_root / "matrices").glob("*.json"))


def _planted(path: Path) -> dict:  # type: ignore[type-arg]
    """The compiled form of `path` with a planted index and no `absent` rule: what an attacker would write."""
    data = load_matrix(path, use_cache=False).to_dict()
    data["packages"][0]["index_url"] = PLANTED_INDEX
    data["title"] = "planted"
    return data


def _expected_name(path: Path) -> tuple[bytes, str, str]:
    key = (cache.folder() / cache.KEY_FILE).read_bytes()
    ckey = cache.cache_key(_chain(path))
    return key, ckey, cache.entry_name(key, ckey)


def _plant(at: Path, data: bytes) -> None:
    at.write_bytes(data)
    at.chmod(0o600)


def test_entries_are_signed_keyed_and_private(write_matrix, _isolated_cache: Path) -> None:
    path = write_matrix(TORCH)
    load_matrix(path)
    folder = _isolated_cache / "matrices"
    [entry] = _entries(_isolated_cache)
    key = folder / cache.KEY_FILE
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == cache.KEY_BYTES
    assert entry.name != f"{cache.cache_key(_chain(path))}.json"  # not predictable without the key
    mac, _, body = entry.read_bytes().partition(b"\n")
    assert len(mac) == 64 and json.loads(body)["name"] == "test"
    assert load_matrix(path).package("torch").index_url == INDEX  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["unsigned", "wrong-key", "predictable-name"])
def test_a_planted_entry_changes_neither_check_nor_the_fix_plan(write_matrix, site: Path, how: str) -> None:
    path = write_matrix(TORCH + f'[[absent]]\nname = "tensorflow"\n{R}')
    load_matrix(path)
    key, ckey, name = _expected_name(path)
    planted = _planted(path)
    planted["absent"] = []
    body = json.dumps(planted).encode()
    if how == "unsigned":
        _plant(cache.folder() / name, body)
    elif how == "wrong-key":  # signed as another user's envdoctor would: a key that is not this user's
        _plant(cache.folder() / name, cache.sign(os.urandom(cache.KEY_BYTES), ckey, body))
    else:  # the old, predictable name, signed with nothing
        _plant(cache.folder() / f"{ckey}.json", body)
    m = load_matrix(path)
    assert m.title == "" and m.package("torch").index_url == INDEX  # type: ignore[union-attr]
    assert [p.index_url for p in from_matrix(m).packages] == [INDEX]
    report = check_environment(m, fake_environment(site))
    assert not report.ok and any(f.subject == "torch" for f in report.findings)
    assert PLANTED_INDEX.encode() not in (cache.folder() / name).read_bytes()  # rewritten, not trusted
    assert load_matrix(path).title == ""


def test_a_verified_entry_is_used_and_a_tampered_one_rebuilt(write_matrix) -> None:
    path = write_matrix(TORCH)
    load_matrix(path)
    key, ckey, name = _expected_name(path)
    entry = cache.folder() / name
    # signed with this user's key: the cache's own kind of entry, so it is used (the warm path)
    _plant(entry, cache.sign(key, ckey, json.dumps(_planted(path)).encode()))
    assert load_matrix(path).title == "planted"
    # one byte changed after signing: rebuilt
    raw = entry.read_bytes()
    _plant(entry, raw.replace(b"planted", b"plantex"))
    assert load_matrix(path).title == ""


def test_a_signed_entry_of_the_wrong_shape_is_rebuilt(write_matrix) -> None:
    path = write_matrix(TORCH)
    load_matrix(path)
    key, ckey, name = _expected_name(path)
    data = _planted(path)
    data["packages"][0]["renamed_field"] = 1
    _plant(cache.folder() / name, cache.sign(key, ckey, json.dumps(data).encode()))
    assert load_matrix(path).package("torch").index_url == INDEX  # type: ignore[union-attr]
    assert b"renamed_field" not in (cache.folder() / name).read_bytes()


@pytest.mark.parametrize("change", ["package-version", "format-version"])
def test_an_upgrade_never_loads_a_stale_cache_entry(write_matrix, _isolated_cache: Path,
                                                    monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    path = write_matrix(TORCH)
    load_matrix(path)
    key, ckey, name = _expected_name(path)
    _plant(cache.folder() / name, cache.sign(key, ckey, json.dumps(_planted(path)).encode()))
    assert load_matrix(path).title == "planted"  # the entry is used while nothing changed
    if change == "package-version":
        monkeypatch.setattr(cache, "__version__", "999.0")
    else:
        monkeypatch.setattr(record, "FORMAT_VERSION", record.FORMAT_VERSION + 1)
        record.shape.cache_clear()  # the digest is computed once per process
    try:
        assert load_matrix(path).title == ""
        assert len(_entries(_isolated_cache)) == 2
    finally:
        record.shape.cache_clear()


@pytest.mark.parametrize("how", ["short", "world-readable", "symlink", "missing"])
def test_an_unsafe_key_trusts_no_entry_and_is_replaced(write_matrix, tmp_path: Path, how: str) -> None:
    path = write_matrix(TORCH)
    load_matrix(path)
    key, ckey, name = _expected_name(path)
    _plant(cache.folder() / name, cache.sign(key, ckey, json.dumps(_planted(path)).encode()))
    key_file = cache.folder() / cache.KEY_FILE
    outside = tmp_path / "their-key"
    outside.write_bytes(key)
    if how == "short":
        _plant(key_file, key[:8])
    elif how == "world-readable":
        key_file.chmod(0o644)
    elif how == "symlink":
        key_file.unlink()
        key_file.symlink_to(outside)
    else:
        key_file.unlink()
    assert load_matrix(path).title == ""  # the planted-but-signed entry is not trusted
    assert not key_file.is_symlink() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes() != key and len(key_file.read_bytes()) == cache.KEY_BYTES  # a new key
    assert outside.read_bytes() == key  # the link's target was never written


def test_a_symlink_planted_at_the_entry_is_not_followed(write_matrix, tmp_path: Path) -> None:
    path = write_matrix(TORCH)
    load_matrix(path)
    key, ckey, name = _expected_name(path)
    entry = cache.folder() / name
    target = tmp_path / "victim.json"
    target.write_bytes(cache.sign(key, ckey, json.dumps(_planted(path)).encode()))  # a valid entry, elsewhere
    before = target.read_bytes()
    entry.unlink()
    entry.symlink_to(target)
    assert load_matrix(path).title == ""  # not read through the link
    assert not entry.is_symlink() and stat.S_IMODE(entry.stat().st_mode) == 0o600  # the link was replaced
    assert target.read_bytes() == before  # and its target never written


def test_a_symlink_planted_at_the_folder_is_neither_read_nor_written(write_matrix, _isolated_cache: Path,
                                                                     tmp_path: Path) -> None:
    path = write_matrix(TORCH)
    load_matrix(path, use_cache=False)
    # the attacker's folder holds a key of their own and an entry signed with it, under the right name
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    key = os.urandom(cache.KEY_BYTES)
    _plant(theirs / cache.KEY_FILE, key)
    ckey = cache.cache_key(_chain(path))
    _plant(theirs / cache.entry_name(key, ckey), cache.sign(key, ckey, json.dumps(_planted(path)).encode()))
    before = sorted(p.name for p in theirs.iterdir())
    (_isolated_cache / "matrices").symlink_to(theirs, target_is_directory=True)
    m = load_matrix(path)
    assert m.title == "" and m.package("torch").index_url == INDEX  # type: ignore[union-attr]
    assert sorted(p.name for p in theirs.iterdir()) == before  # nothing written through the link
    assert (_isolated_cache / "matrices").is_symlink()  # envdoctor leaves it for the user to remove


def test_a_folder_others_can_write_is_not_trusted(write_matrix, _isolated_cache: Path) -> None:
    path = write_matrix(TORCH)
    load_matrix(path)
    key, ckey, name = _expected_name(path)
    _plant(cache.folder() / name, cache.sign(key, ckey, json.dumps(_planted(path)).encode()))
    cache.folder().chmod(0o777)
    assert load_matrix(path).title == ""  # read: not trusted; write: the folder is tightened back to 0700
    assert stat.S_IMODE(cache.folder().stat().st_mode) == 0o700
    assert load_matrix(path).title == ""  # the planted entry was overwritten with the real one


def test_a_cache_that_cannot_be_written_only_costs_speed(write_matrix, _isolated_cache: Path) -> None:
    path = write_matrix(TORCH)
    (_isolated_cache / "matrices").write_text("not a folder")
    assert load_matrix(path).package("torch") is not None
    assert load_matrix(path).package("torch") is not None
