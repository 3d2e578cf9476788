"""What the installer recorded (PEP 610 direct_url.json) as lock sources; index installs are left to the index."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from packaging.version import Version

from envdoctor._env.environment import Distribution
from envdoctor._lock.model import Artifact, Directory, Locked, Unlocked, Vcs
from envdoctor._lock.records import from_record

V = Version("1.0")


def _dist(direct_url: dict[str, object] | str | None) -> Distribution:
    text = direct_url if isinstance(direct_url, str) or direct_url is None else json.dumps(direct_url)
    return Distribution("demo", V, "1.0", direct_url=text)


@pytest.mark.parametrize(("record", "source"), [
    pytest.param({"url": "https://example.invalid/demo-1.0-py3-none-any.whl",
                  "archive_info": {"hashes": {"sha256": "ab" * 32}}},
                 Artifact("https://example.invalid/demo-1.0-py3-none-any.whl", {"sha256": "ab" * 32}), id="archive"),
    pytest.param({"url": "https://example.invalid/demo-1.0.tar.gz", "archive_info": {"hash": "sha256=" + "cd" * 32}},
                 Artifact("https://example.invalid/demo-1.0.tar.gz", {"sha256": "cd" * 32}), id="legacy-hash"),
    pytest.param({"url": "file:///src/demo", "dir_info": {"editable": True}}, Directory("/src/demo", True), id="editable"),
    pytest.param({"url": "https://example.invalid/demo.git",
                  "vcs_info": {"vcs": "git", "commit_id": "f" * 40, "requested_revision": "main"}},
                 Vcs("git", "https://example.invalid/demo.git", "f" * 40, "main"), id="vcs"),
])
def test_recorded_sources(record: dict[str, object], source: object) -> None:
    assert from_record(_dist(record), V) == Locked("demo", V, source, "installer-record")  # type: ignore[arg-type]


def test_an_index_install_has_no_record() -> None:
    assert from_record(_dist(None), V) is None


def test_a_local_archive_without_a_hash_is_hashed(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a zip")
    locked = from_record(_dist({"url": wheel.as_uri(), "archive_info": {}}), V)
    assert isinstance(locked, Locked) and locked.origin == "local-file"
    assert locked.source == Artifact(wheel.as_uri(), {"sha256": hashlib.sha256(b"not really a zip").hexdigest()}, 16)


@pytest.mark.parametrize("record", [
    pytest.param("{not json", id="unreadable"),
    pytest.param({"url": "https://example.invalid/demo.zip", "archive_info": {}}, id="remote-without-hash"),
    pytest.param({"url": "https://example.invalid/demo.git", "vcs_info": {"vcs": "git"}}, id="vcs-without-commit"),
])
def test_what_cannot_be_locked_says_why(record: dict[str, object] | str) -> None:
    result = from_record(_dist(record), V)
    assert isinstance(result, Unlocked) and result.reason
