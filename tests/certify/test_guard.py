"""The pre-flight guard: fast and light with a valid certificate, a clear error or exit without one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import envdoctor
from envdoctor._certify import guard as _guard
from envdoctor._certify import store
from envdoctor._certify.certify import certify_environment
from envdoctor.errors import NotCertifiedError

PROBES = ('[[packages]]\nname = "packaging"\nreason = "the probe imports it"\n\n'
          '[[probes]]\nname = "imports"\ntier = 1\nparams = { modules = ["packaging"] }\n')


@pytest.fixture
def certified(write_matrix) -> str:  # type: ignore[no-untyped-def]
    """A matrix certified for this interpreter on the CPU, up to tier 1 (its one probe imports packaging)."""
    path = str(write_matrix(PROBES))
    result = certify_environment(path, tier=1, device="cpu")
    assert result.certified, result.summary
    return path


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))


def test_guard_is_public_with_a_decorator_form() -> None:
    assert envdoctor.guard is _guard.guard
    assert envdoctor.guard.required is _guard.required


def test_valid_certificate_returns_it_without_heavy_imports(certified: str) -> None:
    out = _python(
        "import sys, envdoctor\n"
        f"c = envdoctor.guard({certified!r}, tier=1, device='cpu')\n"
        "heavy = [m for m in ('torch', 'transformers', 'bitsandbytes', 'pydantic', 'rich', 'packaging',\n"
        "                     'platformdirs', 'pynvml', 'dataclasses', 'hashlib', 'typing', 'json', 're',\n"
        "                     'functools', 'contextlib') if m in sys.modules]\n"
        "import json\n"
        "print(json.dumps({'matrix': c.matrix, 'tier': c.tier, 'heavy': heavy}))\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"matrix": "test@1.0", "tier": 1, "heavy": []}


def test_the_fast_path_is_fenced_to_these_modules(certified: str) -> None:
    out = _python(
        "import json, sys\nbefore = set(sys.modules)\nimport envdoctor\n"
        f"envdoctor.guard({certified!r}, tier=1, device='cpu')\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n")
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout))
    assert {m for m in loaded if m.startswith("envdoctor")} == {
        "envdoctor", "envdoctor._lazy", "envdoctor._version", "envdoctor.errors", "envdoctor._fastpath",
        "envdoctor._certify",
        "envdoctor._certify.guard", "envdoctor._certify.store", "envdoctor._certify.fingerprint",
        # not gpuid: a CPU certificate judged for --device cpu asks for no GPU; not _fix: the interrupted-fix
        # fence (a few stats) is in _fastpath
        "envdoctor._certify._record"}
    # the C halves of hashlib, hmac and json; the lazy names load through __import__, not importlib
    assert {m for m in loaded if not m.startswith("envdoctor")} <= {"_sha2", "_sha256", "_json", "_operator",
                                                                   "__future__"}


def test_no_certificate_raises_with_the_report_and_the_commands(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix('[[packages]]\nname = "no-such-package-xyz"\nreason = "needed"\n' + PROBES))
    with pytest.raises(NotCertifiedError) as info:
        envdoctor.guard(path, tier=1, device="cpu")
    msg = str(info.value)
    assert msg.startswith(f"this environment is not certified for {path} (tier 1): no certificate")
    assert "no-such-package-xyz is not installed" in msg  # the check's report
    assert f"envdoctor fix --matrix {path}" in msg and f"envdoctor certify --matrix {path} --tier 1 --device cpu" in msg
    assert info.value.exit_code == 1


def test_exit_true_prints_and_exits_1_without_traceback(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(PROBES))
    out = _python(f"import envdoctor\nenvdoctor.guard({path!r}, tier=1, device='cpu', exit=True)\nprint('ran')")
    assert out.returncode == 1 and "ran" not in out.stdout
    assert out.stderr.startswith("envdoctor: this environment is not certified") and "Traceback" not in out.stderr
    assert "envdoctor certify --matrix" in out.stderr


def test_exit_true_with_an_unknown_matrix_is_one_line() -> None:
    out = _python("import envdoctor\nenvdoctor.guard('no-such-matrix', exit=True)")
    assert out.returncode == 2 and out.stderr.startswith("envdoctor: error: unknown matrix 'no-such-matrix'")
    assert "Traceback" not in out.stderr


def test_tampered_certificate_is_rejected(certified: str) -> None:
    path = store.cert_path(store.resolve(certified), tier=1, device="cpu")
    text = Path(path).read_text()
    Path(path).write_text(text.replace('"certified": true', '"certified": true ', 1))
    with pytest.raises(NotCertifiedError, match="does not verify"):
        envdoctor.guard(certified, tier=1, device="cpu")


def test_changed_package_invalidates(certified: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envdoctor.testing import make_dist

    assert envdoctor.guard(certified, tier=1, device="cpu") is not None
    site = tmp_path / "extra-site"
    make_dist(site, "bitsandbytes", "0.45.0")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(NotCertifiedError, match="installed bitsandbytes-0.45.0.dist-info"):
        envdoctor.guard(certified, tier=1, device="cpu")


def test_certify_true_runs_the_probes_and_returns_the_new_certificate(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(PROBES))
    cert = envdoctor.guard(path, tier=1, device="cpu", certify=True)
    assert cert is not None and cert.certified and cert.tier == 1
    assert envdoctor.guard(path, tier=1, device="cpu") == cert


def test_skip_variable_warns_and_records(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(PROBES))
    os.environ[_guard.SKIP_ENV] = "1"
    try:
        with pytest.warns(_guard.GuardSkippedWarning, match="ENVDOCTOR_SKIP_GUARD"):
            assert envdoctor.guard(path, tier=2) is None
    finally:
        del os.environ[_guard.SKIP_ENV]
    log = Path(store.cache_dir(), "guard-skips.log").read_text()
    assert path in log and "tier 2" in log


@pytest.mark.parametrize("value", ["0", "false", "No", "off", " "])
def test_skip_variable_set_to_a_false_value_does_not_skip(write_matrix, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                         value: str) -> None:
    monkeypatch.setenv(_guard.SKIP_ENV, value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NotCertifiedError):
            envdoctor.guard(str(write_matrix(PROBES)), tier=1, device="cpu")


def test_decorator_guards_the_first_call_only(certified: str, write_matrix, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    real = _guard.guard
    monkeypatch.setattr(_guard, "guard", lambda *a, **k: calls.append("guard") or real(*a, **k))

    @envdoctor.guard.required(certified, tier=1, device="cpu")
    def train(x: int) -> int:
        """Train."""
        return x * 2

    assert train(2) == 4 and train(3) == 6 and calls == ["guard"]
    assert train.__doc__ == "Train."

    @envdoctor.guard.required(str(write_matrix(PROBES, name="other")), tier=1, device="cpu")
    def never() -> None:
        raise AssertionError("must not run")

    with pytest.raises(NotCertifiedError):
        never()


def test_bad_device_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="device='mps'"):
        envdoctor.guard(device="mps")


def test_bad_tier_is_a_value_error_even_at_decoration_time() -> None:
    with pytest.raises(ValueError, match="tier=7"):
        envdoctor.guard(tier=7)
    with pytest.raises(ValueError, match="tier=-1"):
        envdoctor.guard.required(tier=-1)


def test_decorator_skip_warning_points_at_the_callers_line(write_matrix, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(_guard.SKIP_ENV, "1")

    @envdoctor.guard.required(str(write_matrix(PROBES)), tier=1)
    def train() -> str:
        return "trained"

    with pytest.warns(_guard.GuardSkippedWarning) as got:
        assert train() == "trained"
    assert got[0].filename == __file__


def test_no_fix_command_when_fix_cannot_help(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix('[python]\nspecifier = "<3.0"\nreason = "old"\nevidence = ["e"]\n' + PROBES))
    with pytest.raises(NotCertifiedError) as info:
        envdoctor.guard(path, tier=1, device="cpu")
    msg = str(info.value)
    assert "Python" in msg and "envdoctor fix" not in msg  # fix changes packages, not the interpreter
    assert f"envdoctor certify --matrix {path} --tier 1 --device cpu" in msg


def test_the_error_carries_the_report_and_the_commands_as_data(write_matrix) -> None:  # type: ignore[no-untyped-def]
    from envdoctor._check import Report
    from envdoctor._render.certify import render_not_certified

    path = str(write_matrix('[[packages]]\nname = "no-such-package-xyz"\nreason = "needed"\n' + PROBES))
    with pytest.raises(NotCertifiedError) as info:
        envdoctor.guard(path, tier=1, device="cpu")
    e = info.value
    assert isinstance(e.report, Report) and e.result is None and e.status is not None and not e.status.valid
    assert [f.message for f in e.report.problems if "no-such-package-xyz" in f.message]
    assert e.commands == (("envdoctor", "fix", "--matrix", path),
                          ("envdoctor", "certify", "--matrix", path, "--tier", "1", "--device", "cpu"))
    assert str(e) == render_not_certified(e) and (e.matrix, e.tier) == (path, 1)


def test_certify_true_that_fails_carries_the_certification(write_matrix) -> None:  # type: ignore[no-untyped-def]
    from envdoctor._certify.certify import CertifyResult

    path = str(write_matrix('[[packages]]\nname = "no-such-package-xyz"\nreason = "needed"\n' + PROBES))
    with pytest.raises(NotCertifiedError) as info:
        envdoctor.guard(path, tier=1, device="cpu", certify=True)
    e = info.value
    assert isinstance(e.result, CertifyResult) and e.result.check_ok is False and e.report is None
    assert e.commands[0] == ("envdoctor", "fix", "--matrix", path)
    msg = str(e)
    assert msg.startswith("this environment is not certified for test@1.0 (tier 1): check fail: 1 problem(s)")
    assert "NOT CERTIFIED" in msg and f"envdoctor fix --matrix {path}" in msg
