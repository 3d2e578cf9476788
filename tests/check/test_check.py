"""Each rule kind of a matrix, applied to fake environments built from real dist-info folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envdoctor._check import check_environment, load_model_config
from envdoctor._check.findings import Kind, Status
from envdoctor._matrix.loader import load_matrix
from envdoctor.errors import InspectionError
from envdoctor.testing import fake_environment, fake_gpu, make_dist

R = 'reason = "r"\nevidence = ["e"]\n'


def _by(report, kind: Kind):
    return [f for f in report.findings if f.kind is kind]


def _uses(report):
    """The model findings of [[model_features]] rules (not the model type's floor)."""
    return [f for f in _by(report, Kind.MODEL) if f.message.startswith("the model uses")]


@pytest.fixture
def matrix(write_matrix):
    def make(body: str):
        return load_matrix(str(write_matrix(body)))
    return make


def test_package_version_missing_and_optional(site: Path, dist, matrix) -> None:
    dist("transformers", "4.41.0")
    m = matrix(f'[[packages]]\nname = "transformers"\nspecifier = ">=4.43.0"\n{R}'
               f'[[packages]]\nname = "peft"\nspecifier = ">=0.13"\n{R}'
               f'[[packages]]\nname = "wandb"\noptional = true\n{R}')
    report = check_environment(m, fake_environment(site))
    [pkg] = _by(report, Kind.PACKAGE)
    assert pkg.status is Status.FAIL and pkg.found == "4.41.0" and pkg.expected == ">=4.43.0"
    missing = {f.subject: f.status for f in _by(report, Kind.MISSING)}
    assert missing == {"peft": Status.FAIL, "wandb": Status.WARN}
    assert not report.ok and report.exit_code == 1


def test_local_build_label(site: Path, dist, matrix) -> None:
    dist("torch", "2.4.0+cpu")
    m = matrix(f'[[packages]]\nname = "torch"\nspecifier = "==2.4.0"\nlocal = "cu118"\n{R}')
    [f] = _by(check_environment(m, fake_environment(site)), Kind.PACKAGE)
    assert f.status is Status.FAIL and "+cu118 build" in f.message


def test_must_be_absent_and_known_bad_with_condition(site: Path, dist, matrix) -> None:
    dist("tensorflow", "2.19.0")
    dist("transformers", "5.0.0")
    dist("trl", "0.8.6")
    m = matrix(f'[[absent]]\nname = "tensorflow"\n{R}'
               f'[[known_bad]]\nname = "transformers"\nspecifier = ">=5"\nwith = "trl<0.9"\n{R}'
               f'[[known_bad]]\nname = "transformers"\nspecifier = "==4.46.0"\n{R}')
    report = check_environment(m, fake_environment(site))
    assert [f.subject for f in _by(report, Kind.ABSENT)] == ["tensorflow"]
    [bad] = _by(report, Kind.KNOWN_BAD)
    assert "together with trl<0.9" in bad.message


def test_known_bad_condition_not_met_is_silent(site: Path, dist, matrix) -> None:
    dist("transformers", "5.0.0")
    dist("trl", "1.16.0")
    m = matrix(f'[[known_bad]]\nname = "transformers"\nspecifier = ">=5"\nwith = "trl<0.9"\n{R}')
    assert _by(check_environment(m, fake_environment(site)), Kind.KNOWN_BAD) == []


def test_consistency_like_pip_check_with_markers(site: Path, dist, matrix) -> None:
    dist("transformers", "4.46.3", ["tokenizers<0.21,>=0.20", 'torch>=2; extra == "torch"',
                                    'never-installed>=1; python_version < "3.0"'])
    dist("tokenizers", "0.21.0")
    dist("other", "1.0", ["missingdep>=1"])
    m = matrix(f'[[packages]]\nname = "transformers"\n{R}')
    found = {(f.subject, f.status) for f in _by(check_environment(m, fake_environment(site)), Kind.CONSISTENCY)}
    # the matrix's own package fails; an unrelated broken package only warns; markers and extras are evaluated
    assert found == {("transformers", Status.FAIL), ("other", Status.WARN)}


def test_a_dependency_behind_extra_not_equal_applies_without_extras(site: Path, dist, matrix) -> None:
    # `extra != "gpu"` holds when no extra is asked for: the dependency applies, so its absence is reported
    dist("accel", "1.0", ['needed-dep>=1; extra != "gpu"', 'gpu-only>=1; extra == "gpu"'])
    [f] = _by(check_environment(matrix(""), fake_environment(site)), Kind.CONSISTENCY)
    assert (f.subject, f.status, f.found) == ("accel", Status.WARN, "not installed")
    assert "requires needed-dep>=1, which is not installed" in f.message


def test_an_odd_marker_is_a_metadata_warning_not_a_traceback(site: Path, dist, matrix) -> None:
    dist("oddpkg", "2.0", ['something>=1; python_version ~= "foo"', "missingdep>=1"])
    report = check_environment(matrix(""), fake_environment(site))
    [warn] = _by(report, Kind.METADATA)
    assert warn.status is Status.WARN and warn.subject == "oddpkg"
    assert "oddpkg 2.0 declares 'something>=1; python_version ~= \"foo\"'" in warn.message
    assert "cannot be evaluated" in warn.message
    assert warn.evidence[0].endswith('METADATA: Requires-Dist: something>=1; python_version ~= "foo"')
    # the distribution's other lines are still checked
    assert [f.subject for f in _by(report, Kind.CONSISTENCY)] == ["oddpkg"]


def test_python_and_platform(site: Path, matrix) -> None:
    m = matrix(f'[python]\nspecifier = ">=3.11"\n{R}[[platform]]\nmarker = "sys_platform == \'linux\'"\n{R}')
    report = check_environment(m, fake_environment(site, python_version="3.10.14", sys_platform="darwin"))
    assert _by(report, Kind.PYTHON)[0].status is Status.FAIL
    assert _by(report, Kind.PLATFORM)[0].status is Status.FAIL


GPU = (f'[gpu.cuda]\npackages = ["bitsandbytes"]\n{R}[gpu.bf16]\n{R}[gpu.mps]\n{R}[gpu.driver]\n{R}'
       f'[[gpu.workloads]]\nname = "qlora-8b"\nmin_vram_gib = 22\n{R}')


def test_gpu_rules_on_fake_t4(site: Path, dist, matrix) -> None:
    dist("torch", "2.4.0+cu118")
    report = check_environment(matrix(GPU), fake_environment(site, gpu=fake_gpu("t4")))
    status = {f.subject: f.status for f in _by(report, Kind.GPU)}
    assert status == {"cuda": Status.OK, "bf16": Status.WARN, "vram:qlora-8b": Status.WARN, "torch-cuda": Status.OK}
    bf16 = next(f for f in report.findings if f.subject == "bf16")
    assert "use fp16" in bf16.message


def test_gpu_rules_on_fake_a100_with_old_driver(site: Path, dist, matrix) -> None:
    dist("torch", "2.6.0+cu126")
    gpu = fake_gpu("a100-80gb", cuda_driver_version="11.8")
    status = {f.subject: f.status for f in _by(check_environment(matrix(GPU), fake_environment(site, gpu=gpu)), Kind.GPU)}
    assert status["bf16"] is Status.OK and status["torch-cuda"] is Status.FAIL


def test_gpu_rules_without_gpu_and_on_mps(site: Path, matrix) -> None:
    report = check_environment(matrix(GPU), fake_environment(site))
    assert [(f.subject, f.status) for f in _by(report, Kind.GPU)] == [("cuda", Status.FAIL)]
    mps = check_environment(matrix(GPU), fake_environment(site, gpu=fake_gpu("mps")))
    assert [(f.subject, f.status) for f in _by(mps, Kind.GPU)] == [("mps", Status.FAIL)]


def test_cpu_torch_on_fake_cuda_gpu_fails(site: Path, dist, matrix) -> None:
    dist("torch", "2.13.0+cpu")
    report = check_environment(matrix(GPU), fake_environment(site, gpu=fake_gpu("h100-80gb")))
    assert any(f.subject == "torch-cuda" and f.status is Status.FAIL for f in report.findings)


def test_model_features_listed_even_when_satisfied(site: Path, dist, matrix, tmp_path: Path) -> None:
    dist("transformers", "4.41.0")
    m = matrix(f'[[model_features]]\nkey = "rope_scaling.rope_type"\nequals = "llama3"\nrequires = "transformers>=4.43.0"\n'
               f'feature = "Llama 3.1 rope"\n{R}'
               f'[[model_features]]\nkey = "architectures"\ncontains = "MllamaForConditionalGeneration"\n'
               f'requires = "transformers>=4.45.0"\nfeature = "Llama 3.2 Vision"\n{R}')
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"], "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}))
    [f] = _uses(check_environment(m, fake_environment(site), load_model_config(tmp_path)))
    assert f.status is Status.FAIL and f.expected == ">=4.43.0" and f.found == "4.41.0"
    dist("transformers", "4.46.3")  # a second dist-info in the same folder: the first one read still wins
    twice = check_environment(m, fake_environment(site), load_model_config(cfg))
    [still] = _uses(twice)
    assert still.status is Status.FAIL and still.found == "4.41.0"
    [dup] = _by(twice, Kind.METADATA)
    assert dup.status is Status.WARN and dup.found == "4.41.0, 4.46.3"
    site2 = tmp_path / "site2"
    make_dist(site2, "transformers", "4.46.3")
    [ok] = _uses(check_environment(m, fake_environment(site2), load_model_config(cfg)))
    assert ok.status is Status.OK and ok.found == "4.46.3"


def test_bad_model_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InspectionError, match="is not valid JSON"):
        load_model_config(tmp_path)


def test_findings_ordered_by_root_cause(site: Path, dist, matrix) -> None:
    dist("tensorflow", "2.19.0")
    m = matrix(f'[[absent]]\nname = "tensorflow"\n{R}[[packages]]\nname = "peft"\n{R}[python]\nspecifier = "<3"\n{R}')
    kinds = [f.kind for f in check_environment(m, fake_environment(site)).findings]
    assert kinds.index(Kind.PYTHON) < kinds.index(Kind.MISSING) < kinds.index(Kind.ABSENT)


def test_the_certificate_is_an_input_and_check_never_reads_the_store(site: Path, matrix) -> None:
    from envdoctor._check.findings import CertificateSummary

    m, env = matrix(""), fake_environment(site)
    assert check_environment(m, env).certificate is None and _by(check_environment(m, env), Kind.CERTIFICATE) == []
    valid = check_environment(m, env, certificate=CertificateSummary(True, "certified test@1.0 tier 2"))
    [f] = _by(valid, Kind.CERTIFICATE)
    assert f.status is Status.OK and f.message == "certificate: certified test@1.0 tier 2" and f.fix is None
    broken = check_environment(m, env, certificate=CertificateSummary(False, "store unreadable", readable=False))
    assert _by(broken, Kind.CERTIFICATE) == [] and broken.to_dict()["certificate"] == {"valid": False,
                                                                                       "reason": "store unreadable"}
    code = ("import sys; from envdoctor._check import check; from envdoctor._env.gpu import declared; "
            "check('llama31', gpu=declared('none')); print(sorted(m for m in sys.modules if 'certify' in m))")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_public_check_looks_the_certificate_up(monkeypatch: pytest.MonkeyPatch, site: Path, matrix) -> None:
    import envdoctor
    from envdoctor import _certify

    m, env = matrix(""), fake_environment(site)
    report = envdoctor.check(m, environment=env)
    assert report.certificate is not None and report.certificate.valid is False
    assert [f.status for f in _by(report, Kind.CERTIFICATE)] == [Status.SKIP]

    def broken(*args: object, **kw: object) -> object:
        raise OSError("certificate store on fire")

    monkeypatch.setattr(_certify, "certificate_status", broken)
    report = envdoctor.check(m, environment=env)
    assert report.certificate is not None and not report.certificate.readable
    assert "on fire" in report.certificate.reason and _by(report, Kind.CERTIFICATE) == []


def test_report_facts_are_typed_and_json_keys_stay(site: Path, matrix) -> None:
    from dataclasses import replace

    from envdoctor._env.environment import Runtime
    from envdoctor._env.gpu import GpuInfo
    from envdoctor._render.check_json import render

    env = replace(fake_environment(site, gpu=fake_gpu("t4")), runtime=Runtime(colab=True))
    report = check_environment(matrix(""), env)
    assert isinstance(report.gpu, GpuInfo) and report.gpu.name == "Tesla T4"
    assert isinstance(report.runtime, Runtime) and report.runtime.colab
    text = render(report)
    data = json.loads(text)
    assert list(data) == sorted(data) and text.index('"certificate"') < text.index('"findings"')
    assert set(data) == {"schema_version", "ok", "matrix", "matrix_status", "matrix_ref", "environment", "gpu", "certificate",
                         "model", "summary", "findings"}
    assert data["environment"]["runtime"] == {"notebook": False, "colab": True, "kaggle": False, "virtualenv": False}
    assert data["gpu"]["compute_capability"] == "7.5" and data["certificate"] == {} and data["model"] == {}
