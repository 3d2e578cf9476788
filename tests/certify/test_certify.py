"""`certify` end to end with cheap third-party probes: tiers, skips, blocking, the certificate, the CLI, and check."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest

import envdoctor
from envdoctor._certify import certificate_status, gpuid
from envdoctor._certify.certify import certify_environment
from envdoctor._certify.gpuid import GpuIdentity
from envdoctor._cli import main
from envdoctor._env import gpu as _gpu
from envdoctor.errors import MatrixError
from envdoctor.testing import fake_gpu

PROBES = """
[[probes]]
name = "demo-pass"
tier = 1
params = { rank = 8 }

[[probes]]
name = "demo-gpu"
tier = 2

[[probes]]
name = "demo-tier3"
tier = 3
"""


def _by_name(result):  # type: ignore[no-untyped-def]
    return {r.name: r for r in result.results}


def test_cpu_certification_skips_gpu_probes_and_runs_tier3_on_cpu(write_matrix, demo_probes, no_gpu) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix(PROBES)
    result = certify_environment(str(path), tier=3)
    got = _by_name(result)
    assert result.device == "cpu" and result.certified, result.summary
    assert got["check"].status == "pass" and got["check"].tier == 0
    assert got["demo-pass"].status == "pass" and got["demo-pass"].details["seen"] == {"rank": 8}
    assert got["demo-gpu"].status == "skipped" and got["demo-gpu"].reason == "skipped: no GPU"
    assert got["demo-tier3"].reason == "ran on cpu"
    data = json.loads(Path(result.path).read_text())
    assert data["matrix"]["ref"] == "test@1.0" and data["gpu"] is None and data["device"] == "cpu"
    assert any(name.lower() == "packaging" for name, _ in data["environment"]["distributions"])
    assert data["environment"]["python"] == f"{sys.implementation.name}-{platform.python_version()}"
    st = certificate_status(str(path))
    assert st.valid and st.tier == 3


def test_tier_limit_and_a_failing_tier_blocks_the_next(write_matrix, demo_probes, no_gpu) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix('[[probes]]\nname = "demo-raise"\ntier = 1\n\n[[probes]]\nname = "demo-pass"\ntier = 2\n'
                        '\n[[probes]]\nname = "demo-tier3"\ntier = 3\n')
    result = certify_environment(str(path), tier=2)
    got = _by_name(result)
    assert not result.certified and "demo-tier3" not in got
    assert got["demo-pass"].status == "skipped" and "demo-raise (tier 1) did not pass" in got["demo-pass"].reason
    assert "demo-raise fail" in result.summary
    again = _by_name(certify_environment(str(path), tier=2, keep_going=True))
    assert again["demo-pass"].status == "pass"
    st = certificate_status(str(path))
    assert not st.valid and "did not pass" in st.reason


def test_unknown_probe_is_a_matrix_error_with_a_suggestion(write_matrix, demo_probes, no_gpu, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix('[[probes]]\nname = "demo-pas"\ntier = 1\n')
    with pytest.raises(MatrixError, match=r"probes\[0\] \(demo-pas\): no probe of that name .*did you mean 'demo-pass'"):
        certify_environment(str(path), tier=1)
    assert main(["certify", "--matrix", str(path), "--tier", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("envdoctor: error: ") and str(path) in err and "Traceback" not in err


def test_matrix_can_forbid_cpu_runs(write_matrix, demo_probes, no_gpu) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix('[[probes]]\nname = "demo-tier3"\ntier = 3\nparams = { allow_cpu = false }\n')
    res = _by_name(certify_environment(str(path), tier=3))["demo-tier3"]
    assert res.status == "skipped" and "does not allow it on the CPU" in res.reason


@pytest.mark.parametrize("probe", ["tiny-qlora", "tiny-galore"])
def test_the_real_tiny_probes_obey_allow_cpu_false(write_matrix, no_gpu, probe: str) -> None:  # type: ignore[no-untyped-def]
    """The rule lives in certify alone (the probes no longer repeat it): it keeps the real probes off the CPU."""
    path = write_matrix(f'[[probes]]\nname = "{probe}"\ntier = 3\nparams = {{ allow_cpu = false }}\n')
    res = _by_name(certify_environment(str(path), tier=3))[probe]
    assert res.status == "skipped" and res.reason == "skipped: the matrix does not allow it on the CPU"


def test_failing_check_is_tier0_and_not_certified(write_matrix, demo_probes, no_gpu) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix('[[packages]]\nname = "no-such-package-xyz"\nspecifier = ">=1"\nreason = "needed"\n' + PROBES)
    result = certify_environment(str(path), tier=1)
    got = _by_name(result)
    assert got["check"].status == "fail" and "no-such-package-xyz" in got["check"].reason
    assert got["demo-pass"].status == "skipped" and not result.certified and result.check_ok is False


def test_fake_gpu_certificate_is_bound_to_that_gpu(write_matrix, demo_probes, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gpu = fake_gpu("h200", uuid="GPU-4c5de732-fake", driver_version="580.159.04")
    ident = GpuIdentity((gpu.uuid,), (gpu.name,), gpu.driver_version, "proc")
    monkeypatch.setattr(_gpu, "detect", lambda *a, **k: gpu)
    monkeypatch.setattr(gpuid, "current", lambda *a, **k: ident)
    path = write_matrix(PROBES)
    result = certify_environment(str(path), tier=2)
    assert result.device == "cuda" and result.certified
    assert _by_name(result)["demo-gpu"].status == "pass"
    assert result.certificate is not None and result.certificate.gpu["uuid"] == "GPU-4c5de732-fake"
    assert certificate_status(str(path), tier=2).valid
    monkeypatch.setattr(gpuid, "current", lambda *a, **k: GpuIdentity(("GPU-other",), ("NVIDIA A100",), "580.159.04", "proc"))
    st = certificate_status(str(path), tier=2)
    assert not st.valid and "this machine has NVIDIA A100 GPU-other" in st.reason


def test_cli_format_json_status_and_list(write_matrix, demo_probes, no_gpu, capsys) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(PROBES))
    assert main(["certify", "--matrix", path, "--status"]) == 1
    assert "certificate not valid: no certificate" in capsys.readouterr().out
    assert main(["certify", "--matrix", path, "--status", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False
    assert main(["certify", "--matrix", path, "--tier", "3", "--format", "json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["certified"] and [p["name"] for p in data["probes"]] == ["check", "device", "demo-pass", "demo-gpu",
                                                                      "demo-tier3"]
    assert data["schema_version"] == 1 and [p["status"] for p in data["probes"]][-2:] == ["skipped", "pass"]
    assert out == json.dumps(data, indent=2, sort_keys=True) + "\n"  # stable, sorted keys
    assert main(["certify", "--matrix", path, "--tier", "2", "--status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["valid"] and status["tier"] == 3 and status["schema_version"] == 1 and status["device"] == "cpu"
    assert main(["certify", "--matrix", path, "--tier", "2", "--status"]) == 0
    assert "certificate valid: certified test@1.0 tier 3 on CPU" in capsys.readouterr().out
    assert main(["certify", "--matrix", path, "--tier", "1"]) == 0
    out = capsys.readouterr().out
    assert "CERTIFIED (CPU only): 3 passed" in out and "demo-pass" in out
    assert main(["certify", "--list-probes"]) == 0
    assert "tiny-qlora" in capsys.readouterr().out


def test_cli_errors_are_one_line(write_matrix, no_gpu, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(""))
    assert main(["certify", "--matrix", path, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("envdoctor: error: --device cuda: no CUDA GPU here") and err.count("\n") == 1
    assert main(["certify", "--matrix", path, "--timeout", "0"]) == 2
    assert "--timeout 0.0: a probe's time limit must be a positive" in capsys.readouterr().err
    assert main(["certify", "--matrix", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "matrix file not found" in err and "Traceback" not in err


def test_check_reports_the_certificate(write_matrix, demo_probes, no_gpu) -> None:  # type: ignore[no-untyped-def]
    from envdoctor import check

    path = str(write_matrix(PROBES))
    assert check(path, gpu="none").certificate.valid is False  # type: ignore[union-attr]
    certify_environment(path, tier=1)
    report = check(path, gpu="none")
    assert report.certificate is not None and report.certificate.valid is True, report.certificate
    assert "tier 1" in report.certificate.reason


def test_check_with_a_declared_gpu_says_certificates_need_a_real_one(write_matrix, demo_probes, no_gpu) -> None:  # type: ignore[no-untyped-def]
    from envdoctor import check

    path = str(write_matrix(PROBES))
    certify_environment(path, tier=1)
    report = check(path, gpu="t4")
    assert report.certificate is not None and report.certificate.valid is False
    assert "declared GPU (Tesla T4)" in report.certificate.reason


CUDA_RULE = '[gpu.cuda]\nrequired = {}\npackages = ["bitsandbytes"]\nreason = "4-bit kernels need CUDA"\n\n'


def test_a_cpu_certificate_needs_a_matrix_that_declares_a_cpu_workload(write_matrix, demo_probes, no_gpu) -> None:  # type: ignore[no-untyped-def]
    """Issue 16: certify on a CPU machine said CERTIFIED for a matrix that check fails ("needs a CUDA GPU")."""
    path = str(write_matrix(CUDA_RULE.format("true") + PROBES))
    result = certify_environment(path, tier=3)
    got = _by_name(result)
    assert not result.certified and got["check"].status == "pass"
    assert got["device"].status == "fail" and "needs a CUDA GPU" in got["device"].reason
    assert "declares a CPU workload" in got["device"].reason
    assert got["demo-pass"].status == "pass" and got["demo-tier3"].status == "pass"  # they still show what runs
    assert not certificate_status(path, tier=1).valid


def test_a_cpu_workload_is_certified_and_says_so(write_matrix, demo_probes, no_gpu, capsys) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(CUDA_RULE.format("false") + PROBES))
    result = certify_environment(path, tier=3)
    device = _by_name(result)["device"]
    assert result.certified and device.status == "pass"
    assert device.reason == ("CPU only: the matrix declares a CPU workload (its [gpu.cuda] rule has required = "
                             "false); not run on the CPU: demo-gpu")
    data = json.loads(Path(result.path).read_text())
    assert data["scope"] == {"device": "cpu", "cpu_only": True, "not_run": ["demo-gpu"]}
    assert main(["certify", "--matrix", path, "--tier", "1"]) == 0
    assert "CERTIFIED (CPU only)" in capsys.readouterr().out


def test_a_later_lower_tier_certification_keeps_the_higher_one(write_matrix, demo_probes, no_gpu) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(PROBES))
    assert certify_environment(path, tier=3).certified
    assert certify_environment(path, tier=0).certified
    st = certificate_status(path, tier=2)
    assert st.valid and st.tier == 3, st.reason
    assert envdoctor.guard(path, tier=3, device="cpu").tier == 3  # type: ignore[union-attr]
