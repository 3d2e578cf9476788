"""The guard's stdlib-only fast path: fenced to `os` and `sys`, and the one definition its slow-path users share."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envdoctor import _fastpath, _paths
from envdoctor._certify import gpuid
from envdoctor._matrix.loader import available, resolve_ref
from envdoctor.testing import make_dist

INFO = "Model: \t\t NVIDIA H200\nIRQ:   57\nGPU UUID: \t GPU-4c5de732-19c8-c4d8-9cfa-8a8a86a8ee4a\nBus Type: \t PCIe\n"
VERSION = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Tue Sep  9 18:37:34 UTC 2025\n"


def test_importing_it_loads_no_module_beyond_envdoctor_itself() -> None:
    code = ("import sys, envdoctor\nbefore = set(sys.modules)\nimport envdoctor._fastpath\n"
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ast.literal_eval(out.stdout.strip()) == ["envdoctor._fastpath"]


def test_paths_wraps_the_same_folders() -> None:
    assert _paths.cache_dir() == Path(_fastpath.cache_folder())
    assert _paths.bundled_matrix_dir() == Path(_fastpath.BUNDLED_MATRICES) and _paths.bundled_matrix_dir().is_dir()


def test_matrix_files_are_what_the_loader_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "mine" / "llama31"
    user.mkdir(parents=True)
    (user / "2099.1.toml").write_text('schema_version = 1\nname = "llama31"\nversion = "2099.1"\n')
    (user / "2024.12.toml").write_text("# shadowed by the bundled one: the first on the search path wins\n")
    monkeypatch.setenv("ENVDOCTOR_MATRIX_PATH", str(tmp_path / "mine"))
    light = sorted((n, v, os.path.realpath(p), b) for n, v, p, b in _fastpath.matrix_files())
    assert light == sorted((e.name, e.version, os.path.realpath(e.path), e.bundled) for e in available())
    assert ("llama31", "2099.1", str(user / "2099.1.toml"), False) in _fastpath.matrix_files("llama31")
    assert _fastpath.resolve_light("llama31") == str(resolve_ref("llama31")) == str(user / "2099.1.toml")


@pytest.mark.parametrize("ref", ["a/b.toml", "x.toml", ".\\m", "./m", "llama31", "llama31@2024.12"])
def test_path_rule(ref: str) -> None:
    assert _fastpath.looks_like_path(ref) is (ref not in ("llama31", "llama31@2024.12"))


def test_metadata_dirs_scan_each_folder_once_in_path_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    make_dist(a, "zeta", "1.0")
    make_dist(a, "alpha", "1.0")
    make_dist(b, "alpha", "2.0")
    (b / "old-1.0-py3.11.egg-info").write_text("Metadata-Version: 1.0\nName: old\nVersion: 1.0\n")
    (b / "not_metadata").mkdir()
    (tmp_path / "link").symlink_to(a)
    got = _fastpath.metadata_dirs([str(a), str(tmp_path / "link"), str(b), str(tmp_path / "missing")])
    assert got == [(str(a), "alpha-1.0.dist-info", True), (str(a), "zeta-1.0.dist-info", True),
                   (str(b), "alpha-2.0.dist-info", True), (str(b), "old-1.0-py3.11.egg-info", False)]


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    """A fake /proc/driver/nvidia with two GPUs (one without a UUID, as some containers show)."""
    root = tmp_path / "nvidia"
    for bus, text in (("0000:1b:00.0", INFO), ("0000:0a:00.0", INFO.replace("4c5de732", "11111111")),
                      ("0000:ff:00.0", "Model: hidden\n")):
        (root / "gpus" / bus).mkdir(parents=True)
        (root / "gpus" / bus / "information").write_text(text)
    (root / "version").write_text(VERSION)
    return root


def test_fake_proc_gpus_in_bus_order_with_the_driver(fake_proc: Path) -> None:
    assert _fastpath.proc_gpus(str(fake_proc)) == [("GPU-11111111-19c8-c4d8-9cfa-8a8a86a8ee4a", "NVIDIA H200"),
                                                   ("GPU-4c5de732-19c8-c4d8-9cfa-8a8a86a8ee4a", "NVIDIA H200")]
    assert _fastpath.proc_driver_version(str(fake_proc)) == "580.159.04"
    ident = gpuid.current(str(fake_proc))
    assert ident.source == "proc" and ident.present and len(ident.uuids) == 2 and ident.driver_version == "580.159.04"


def test_fake_proc_without_usable_files(tmp_path: Path) -> None:
    assert _fastpath.proc_gpus(str(tmp_path / "absent")) is None
    assert _fastpath.proc_driver_version(str(tmp_path / "absent")) is None
    (tmp_path / "version").write_text("garbage\n")
    assert _fastpath.proc_driver_version(str(tmp_path)) == ""
    assert gpuid.from_proc(str(tmp_path)) is None  # no gpus/ folder: NVML would have to answer


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the no-driver shortcut is Linux's")
def test_no_driver_reason_and_identity_without_any_sign_of_a_driver(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert "no NVIDIA driver loaded" in _fastpath.no_driver_reason([str(tmp_path / "none")])
    assert _fastpath.no_driver_reason([str(tmp_path)]) == ""
    monkeypatch.setattr(_fastpath, "DRIVER_SIGNS", (str(tmp_path / "a"), str(tmp_path / "b")))
    monkeypatch.setattr(gpuid, "from_nvml", lambda: pytest.fail("NVML must not be asked without a driver"))
    ident = gpuid.current(str(tmp_path / "nvidia"))
    assert not ident.present and ident.source == "proc" and "no NVIDIA driver loaded" in ident.reason


def test_module_origins_follow_the_path_finder(tmp_path: Path) -> None:
    first, second, third = (tmp_path / n for n in ("first", "second", "third"))
    for d in (first, second, third):
        d.mkdir()
    (first / "ns").mkdir()  # a folder without __init__: a namespace portion, used only when nothing else has it
    (second / "ns").mkdir()
    (second / "ns" / "__init__.py").write_text("")
    (second / "mod.py").write_text("")
    (third / "mod").mkdir()
    (third / "mod" / "__init__.py").write_text("")
    (first / "only_ns").mkdir()
    paths = [str(first), str(second), str(third), str(tmp_path / "missing")]
    got = _fastpath.module_origins(["ns", "mod", "only_ns", "absent"], paths)
    assert got == {"ns": str(second / "ns") + os.sep, "mod": str(second / "mod.py"),
                   "only_ns": str(first / "only_ns") + os.sep + " (namespace)", "absent": ""}
    (first / "mod.py").write_text("")  # a planted module before the real one wins, as `import mod` would
    assert _fastpath.module_origins(["mod"], paths) == {"mod": str(first / "mod.py")}


def test_module_origins_agree_with_importlib_for_installed_packages() -> None:
    import importlib.util

    for name in ("packaging", "pydantic", "pytest"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        assert _fastpath.module_origins([name], sys.path)[name] == os.path.dirname(spec.origin) + os.sep
