"""Certificates on disk: signing, tamper detection, lookup by matrix reference, and judging one against an environment."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

import pytest

from envdoctor import _fastpath, _paths
from envdoctor._certify import fingerprint as fp
from envdoctor._certify import store
from envdoctor._certify._record import hmac_sha256
from envdoctor._certify.gpuid import GpuIdentity
from envdoctor._matrix.loader import resolve_ref

H200 = GpuIdentity(("GPU-4c5de732-19c8-c4d8-9cfa-8a8a86a8ee4a",), ("NVIDIA H200",), "580.159.04", "proc")
NO_GPU = GpuIdentity((), (), "", "proc", "no NVIDIA driver loaded")


def _here(site: Path, gpu: GpuIdentity = NO_GPU) -> store.Here:
    return store.Here((str(site),), "/venv", "cpython-3.12.3", lambda: gpu)


def _write(matrix_file: Path, site: Path, *, device: str = "cpu", gpu: GpuIdentity | None = None,
           certified: bool = True, tier: int = 2, **extra: Any) -> str:
    """A certificate as `certify` writes it, for an environment made of one site folder."""
    paths = [str(site)]
    body = {
        "schema_version": store.CERT_SCHEMA_VERSION, "created": "2026-11-21T00:00:00Z", "certified": certified,
        "tier": tier, "device": device,
        "matrix": {"name": "test", "version": "1.0", "ref": "test@1.0",
                   "files": [{"path": str(matrix_file), "sha256": store.file_sha256(str(matrix_file))}]},
        "environment": {"prefix": "/venv", "python": "cpython-3.12.3",
                        "fingerprint": fp.fingerprint(paths, "/venv", "cpython-3.12.3"),
                        "tokens": fp.distribution_tokens(paths), "dirs": fp.dir_tokens(paths)},
        "gpu": None if gpu is None else {"name": gpu.names[0], "uuid": gpu.uuids[0], "driver_version": gpu.driver_version},
        "probes": [{"name": "imports", "tier": 1, "status": "pass" if certified else "fail", "reason": "x"}],
        **extra,
    }
    return store.write(body, store.cert_path(str(matrix_file), "/venv", tier, device))


@pytest.fixture
def matrix_file(write_matrix) -> Path:  # type: ignore[no-untyped-def]
    return write_matrix("")


@pytest.mark.parametrize("key_len", [0, 16, 32, 64, 65, 200])
def test_hmac_without_openssl_matches_the_stdlib(key_len: int) -> None:
    key, msg = os.urandom(key_len), os.urandom(999)
    assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("xdg", [None, "", "  ", "xdg"])
def test_cache_dir_matches_platformdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: str | None) -> None:
    from platformdirs import user_cache_dir

    monkeypatch.delenv("ENVDOCTOR_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / xdg) if xdg.strip() else xdg)
    expected = user_cache_dir("envdoctor", appauthor=False)
    assert store.cache_dir() == expected and _paths.cache_dir() == Path(expected)
    monkeypatch.setenv("ENVDOCTOR_CACHE_DIR", str(tmp_path / "override"))
    assert store.cache_dir() == str(tmp_path / "override") == str(_paths.cache_dir())


@pytest.mark.parametrize("ref", ["llama31", "llama31@2024.12", "llama31@2024.06", "drift"])
def test_light_resolution_agrees_with_the_loader(ref: str) -> None:
    assert store.resolve(ref) == str(resolve_ref(ref))


def test_light_resolution_of_paths_and_user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "mine" / "llama31"
    user.mkdir(parents=True)
    (user / "2099.1.toml").write_text('schema_version = 1\nname = "llama31"\nversion = "2099.1"\n')
    (user / "9.x.toml").write_text('schema_version = 1\nname = "llama31"\nversion = "9.x"\n')
    monkeypatch.setenv("ENVDOCTOR_MATRIX_PATH", str(tmp_path / "mine"))
    assert store.resolve("llama31@2099.1") == str(resolve_ref("llama31@2099.1"))
    assert _fastpath.resolve_light("llama31") is None  # "9.x" is no plain release number: the loader decides
    rel = os.path.relpath(user / "2099.1.toml")
    assert store.resolve(rel) == str(resolve_ref(rel))


def test_round_trip_and_tampering(matrix_file: Path, site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    path = _write(matrix_file, site)
    cert, why = store.read(path)
    assert cert is not None and why == "" and cert.tier == 2 and cert.device == "cpu"
    assert oct(os.stat(os.path.join(store.cert_dir(), store.KEY_FILE)).st_mode & 0o777) == "0o600"
    text = Path(path).read_text()
    Path(path).write_text(text.replace('"tier": 2', '"tier": 3'))
    cert, why = store.read(path)
    assert cert is None and "does not verify" in why


def test_a_certificate_from_another_machine_does_not_verify(matrix_file: Path, site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    path = _write(matrix_file, site)
    os.remove(os.path.join(store.cert_dir(), store.KEY_FILE))
    store.signing_key()  # this machine's own, different key
    assert store.read(path)[0] is None


def test_unreadable_and_foreign_files(matrix_file: Path) -> None:
    path = store.cert_path(str(matrix_file), "/venv")
    assert store.read(path) == (None, "no certificate")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_text("{not json")
    assert "unreadable certificate" in store.read(path)[1]
    Path(path).write_text(json.dumps({"schema_version": 99}))
    assert "unknown format" in store.read(path)[1]


def test_valid_certificate_holds(matrix_file: Path, site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    _write(matrix_file, site)
    st = store.status(str(matrix_file), tier=2, env=_here(site))
    assert st.valid, st.reason
    assert st.tier == 2 and st.certificate is not None and "certified test@1.0 tier 2 on CPU" in st.reason


def test_changed_package_invalidates_and_says_which(matrix_file: Path, site: Path, dist) -> None:  # type: ignore[no-untyped-def]
    dist("torch", "2.4.0")
    _write(matrix_file, site)
    dist("bitsandbytes", "0.45.0")
    st = store.status(str(matrix_file), env=_here(site))
    assert not st.valid and "installed bitsandbytes-0.45.0.dist-info" in st.reason


def test_higher_tier_than_certified_is_not_valid(matrix_file: Path, site: Path) -> None:
    _write(matrix_file, site, tier=1)
    assert "no certificate for this environment at tier 3 or above on cpu" in store.status(
        str(matrix_file), tier=3, env=_here(site)).reason


def test_certificates_of_different_tiers_coexist(matrix_file: Path, site: Path) -> None:
    """Issue 16: a later tier-0 certification does not replace a tier-3 one; tier 2 is served by tier 3."""
    _write(matrix_file, site, tier=3)
    _write(matrix_file, site, tier=0)
    st = store.status(str(matrix_file), tier=2, env=_here(site))
    assert st.valid and st.tier == 3, st.reason
    assert store.status(str(matrix_file), tier=3, env=_here(site)).tier == 3
    assert store.status(str(matrix_file), tier=0, env=_here(site)).tier == 0  # the asked tier first
    _write(matrix_file, site, tier=2, certified=False)  # a failed tier-2 run leaves the tier-3 certificate alone
    assert store.status(str(matrix_file), tier=2, env=_here(site)).tier == 3


def test_failed_certification_is_not_valid(matrix_file: Path, site: Path) -> None:
    _write(matrix_file, site, certified=False)
    reason = store.status(str(matrix_file), env=_here(site)).reason
    assert "did not pass" in reason and "imports: fail" in reason


def test_edited_matrix_invalidates(matrix_file: Path, site: Path) -> None:
    _write(matrix_file, site)
    matrix_file.write_text(matrix_file.read_text() + "\n# edited\n")
    assert "changed since certification" in store.status(str(matrix_file), env=_here(site)).reason


def test_fake_gpu_certificate_holds_on_the_same_gpu_only(matrix_file: Path, site: Path) -> None:
    _write(matrix_file, site, device="cuda", gpu=H200)
    assert store.status(str(matrix_file), env=_here(site, H200)).valid
    other = GpuIdentity(("GPU-11111111-other",), ("NVIDIA H100 80GB HBM3",), "580.159.04", "proc")
    reason = store.status(str(matrix_file), env=_here(site, other)).reason
    assert "the certificate is for NVIDIA H200 GPU-4c5de732" in reason and "H100" in reason
    newer = GpuIdentity(H200.uuids, H200.names, "590.10.01", "proc")
    assert "driver changed from 580.159.04 to 590.10.01" in store.status(str(matrix_file), env=_here(site, newer)).reason
    reason = store.status(str(matrix_file), env=_here(site, NO_GPU)).reason
    assert "for --device cuda, but this run is for cpu" in reason


def test_cpu_certificate_on_a_fake_gpu_machine_needs_device_cpu(matrix_file: Path, site: Path) -> None:
    _write(matrix_file, site, device="cpu")
    assert not store.status(str(matrix_file), env=_here(site, H200)).valid
    assert store.status(str(matrix_file), device="cpu", env=_here(site, H200)).valid


@pytest.mark.parametrize("text", ['{"a": [1, 2.5, true, null, "x\\u00e9"], "b": {}}', " [] \n", "NaN", '"s"'])
def test_json_reader_without_the_json_module_agrees_with_it(text: str) -> None:
    import json

    from envdoctor._certify._record import json_loads

    assert repr(json_loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", ["", "garbage", "{} x", '{"a":}', "[1,]"])
def test_json_reader_rejects_what_json_rejects(text: str) -> None:
    from envdoctor._certify._record import json_loads

    with pytest.raises(ValueError):
        json_loads(text)
