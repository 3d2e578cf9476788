"""Issue 15 for certification: a matrix is data, never code; state is written 0700/0600 without following links;
the guard sees shadowed modules and in-place edits, and a skipped guard is never silent."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import envdoctor
from envdoctor._certify import store, validate_probe_params
from envdoctor._certify.certify import certify_environment
from envdoctor._cli import main
from envdoctor._matrix.loader import available, load_matrix
from envdoctor.errors import MatrixError, NotCertifiedError, StateError
from envdoctor.testing import fake_environment, make_dist

PACKAGING = '[[packages]]\nname = "packaging"\nreason = "the probe imports it"\n\n'
IMPORTS = PACKAGING + '[[probes]]\nname = "imports"\ntier = 1\nparams = { modules = ["packaging"] }\n'


def _basic_config(victim: Path) -> str:
    return ('[[probes]]\nname = "training-args"\ntier = 1\n'
            f'params = {{ class = "logging.basicConfig", keywords = {{ filename = "{victim}", filemode = "w" }} }}\n')


# ---------------------------------------------------------------- probe params are data


def test_a_matrix_cannot_call_logging_basic_config(write_matrix, tmp_path: Path, no_gpu, capsys) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    path = write_matrix(_basic_config(victim))
    with pytest.raises(MatrixError) as info:
        certify_environment(str(path), tier=1, device="cpu")
    assert str(path) in str(info.value) and "probes[0] (training-args): params.class" in str(info.value)
    assert main(["certify", "--matrix", str(path), "--tier", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("envdoctor: error: ") and "Traceback" not in err and "training-args" in err
    problems = validate_probe_params(load_matrix(str(path)))
    assert len(problems) == 1 and "'TrainingArguments'" in problems[0]  # the allow-list, not the module path
    assert victim.read_text() == "keep me\n"


def test_guard_certify_true_takes_the_same_path(write_matrix, tmp_path: Path, no_gpu) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    path = str(write_matrix(_basic_config(victim)))
    with pytest.raises(MatrixError, match="training-args"):
        envdoctor.guard(path, tier=1, device="cpu", certify=True)
    out = subprocess.run([sys.executable, "-c", f"import envdoctor; envdoctor.guard({path!r}, tier=1, device='cpu', "
                          "certify=True, exit=True)"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("envdoctor: error: ") and "Traceback" not in out.stderr
    assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize("params", [
    pytest.param('{ class = "trl.SFTConfig", keywords = { optim = "os.system" } }', id="dotted-value"),
    pytest.param('{ class = "TrainingArguments", keywords = { deepspeed = "/etc/ds.json" } }', id="file-keyword"),
    pytest.param('{ class = "transformers.pipeline", keywords = { trust_remote_code = true } }', id="pipeline"),
    pytest.param('{ class = "TrainingArguments", keywords = { x = { a = { b = 1 } } } }', id="nested-object"),
    pytest.param('{ class = "TrainingArguments", callback = "os.system" }', id="unknown-param"),
])
def test_training_args_refuses_what_is_not_plain_data(write_matrix, params: str) -> None:  # type: ignore[no-untyped-def]
    m = load_matrix(str(write_matrix(f'[[probes]]\nname = "training-args"\ntier = 2\nparams = {params}\n')))
    problems = validate_probe_params(m)
    assert len(problems) == 1 and "probes[0] (training-args): params." in problems[0], problems  # one line each


@pytest.mark.parametrize("modules", ['["os"]', '["subprocess"]', '["email.mime"]', '{ os = "os" }'])
def test_the_imports_probe_imports_only_the_matrix_packages(write_matrix, no_gpu, modules: str) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix(PACKAGING + f'[[probes]]\nname = "imports"\ntier = 1\nparams = {{ modules = {modules} }}\n')
    problems = validate_probe_params(load_matrix(str(path)))
    assert len(problems) == 1 and "is not an import name of the matrix's packages (packaging)" in problems[0]
    with pytest.raises(MatrixError, match="imports only its own packages"):
        certify_environment(str(path), tier=1, device="cpu")


def test_import_names_come_from_the_installed_metadata(write_matrix, site: Path) -> None:  # type: ignore[no-untyped-def]
    make_dist(site, "py-fancy-dist", "1.0", files={"fancymod/__init__.py": "", "fancy_ext.py": ""})
    m = load_matrix(str(write_matrix('[[packages]]\nname = "py-fancy-dist"\nreason = "x"\n\n[[probes]]\n'
                                     'name = "imports"\ntier = 1\nparams = { modules = ["fancymod", "fancy_ext"] }\n')))
    assert len(validate_probe_params(m)) == 2  # the names are not guessable from the distribution's name
    assert validate_probe_params(m, fake_environment(site)) == []


def test_bundled_matrices_validate_and_keep_their_spelling() -> None:
    for entry in available():
        assert validate_probe_params(load_matrix(str(entry.path))) == [], entry.ref


def test_the_child_refuses_too_when_called_without_certify(tmp_path: Path) -> None:
    from envdoctor._certify import registry
    from envdoctor._certify.registry import ProbeContext
    from envdoctor._certify.runner import run_probe

    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    ctx = ProbeContext(device="cpu", params={"class": "logging.basicConfig",
                                             "keywords": {"filename": str(victim), "filemode": "w"}},
                       matrix={"name": "t", "packages": {}}, gpu={}, workdir="")
    spec = registry.get("training-args")
    assert spec is not None
    res = run_probe(spec, 2, ctx)
    assert res.status == "fail" and victim.read_text() == "keep me\n"
    res = run_probe(registry.get("imports"), 1, ProbeContext(  # type: ignore[arg-type]
        device="cpu", params={"modules": ["os"]}, matrix={"name": "t", "packages": {}}, gpu={}, workdir=""))
    assert res.status == "fail" and res.reason.startswith("refused: ")


# ---------------------------------------------------------------- the certificate folder and its key


def test_folders_0700_files_0600(write_matrix, no_gpu) -> None:  # type: ignore[no-untyped-def]
    result = certify_environment(str(write_matrix(IMPORTS)), tier=1, device="cpu")
    assert result.certified and result.path
    for p, mode in ((store.cache_dir(), 0o700), (store.cert_dir(), 0o700), (result.path, 0o600),
                    (store.key_path(), 0o600)):
        assert stat.S_IMODE(os.stat(p).st_mode) == mode, p


def test_a_symlinked_certificate_folder_is_refused(write_matrix, tmp_path: Path, no_gpu) -> None:  # type: ignore[no-untyped-def]
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    os.makedirs(store.cache_dir(), exist_ok=True)
    os.symlink(elsewhere, store.cert_dir())
    with pytest.raises(StateError, match="is a symbolic link"):
        certify_environment(str(write_matrix(IMPORTS)), tier=1, device="cpu")
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_at_the_certificate_is_replaced_not_followed(write_matrix, tmp_path: Path, no_gpu) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(IMPORTS))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    target = store.cert_path(store.resolve(path), tier=1, device="cpu")
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    os.symlink(victim, target)
    assert certify_environment(path, tier=1, device="cpu").certified
    assert victim.read_text() == "keep me\n" and not os.path.islink(target)


def test_a_symlinked_key_is_refused(write_matrix, tmp_path: Path, no_gpu) -> None:  # type: ignore[no-untyped-def]
    known = tmp_path / "known-bytes"
    known.write_bytes(b"k" * 32)
    os.makedirs(store.cert_dir(), mode=0o700)
    os.symlink(known, store.key_path())
    with pytest.raises(StateError, match="symbolic link is refused"):
        certify_environment(str(write_matrix(IMPORTS)), tier=1, device="cpu")


@pytest.mark.parametrize("key", [b"", b"short", b"x" * 31, b"y" * 200])
def test_a_short_or_malformed_key_is_an_error_not_a_certificate(write_matrix, no_gpu, capsys, key: bytes) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(IMPORTS))
    os.makedirs(store.cert_dir(), mode=0o700)
    fd = os.open(store.key_path(), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, key)
    os.close(fd)
    with pytest.raises(StateError, match=f"is {len(key)} bytes"):
        certify_environment(path, tier=1, device="cpu")
    assert main(["certify", "--matrix", path, "--tier", "1", "--device", "cpu"]) == 2
    assert "remove it and run envdoctor certify again" in capsys.readouterr().err
    assert [n for n in os.listdir(store.cert_dir()) if n.endswith(".json")] == []


def test_a_key_cut_short_after_certification_invalidates_with_the_reason(write_matrix, no_gpu) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(IMPORTS))
    assert certify_environment(path, tier=1, device="cpu").certified
    with open(store.key_path(), "r+b") as f:
        f.truncate(8)
    with pytest.raises(NotCertifiedError, match="is 8 bytes"):
        envdoctor.guard(path, tier=1, device="cpu")


def test_private_write_and_append_never_follow_links(tmp_path: Path) -> None:
    from envdoctor._paths import private_append, private_write

    root = tmp_path / "state"
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    private_write(root / "a" / "file.json", "{}", root=root)
    assert stat.S_IMODE(os.stat(root / "a").st_mode) == 0o700
    os.symlink(victim, root / "a" / "link.json")
    private_write(root / "a" / "link.json", "new", root=root)
    assert victim.read_text() == "keep me\n" and (root / "a" / "link.json").read_text() == "new"
    os.symlink(victim, root / "a" / "log")
    with pytest.raises(StateError):
        private_append(root / "a" / "log", "line\n", root=root)
    assert victim.read_text() == "keep me\n"


# ---------------------------------------------------------------- guard blind spots


def test_a_module_shadowed_through_the_path_invalidates(write_matrix, tmp_path: Path, no_gpu,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(write_matrix(IMPORTS))
    assert certify_environment(path, tier=1, device="cpu").certified
    assert envdoctor.guard(path, tier=1, device="cpu") is not None
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "packaging.py").write_text("print('not the real packaging')\n")
    monkeypatch.syspath_prepend(str(shadow))
    with pytest.raises(NotCertifiedError, match=r"`import packaging` now finds .*shadow/packaging.py"):
        envdoctor.guard(path, tier=1, device="cpu")
    env = dict(os.environ, PYTHONPATH=str(shadow))  # the same through PYTHONPATH in a fresh interpreter
    code = ("from envdoctor._certify import store\n"  # the fast path only: the slow one needs the real packaging
            f"print(store.status(store.resolve({path!r}), tier=1, device='cpu').reason)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "`import packaging` now finds" in out.stdout, out.stderr


def test_an_in_place_edit_is_seen_by_deep_and_verify_files(write_matrix, tmp_path: Path, no_gpu, capsys,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    make_dist(site, "edited-pkg", "1.0", files={"edited_pkg/__init__.py": "VALUE = 1\n"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    path = str(write_matrix('[[packages]]\nname = "edited-pkg"\nreason = "x"\n\n[[probes]]\nname = "imports"\n'
                            'tier = 1\nparams = { modules = ["edited_pkg"] }\n'))
    result = certify_environment(path, tier=1, device="cpu", verify_files=True)
    assert result.certified, result.summary
    assert {r.name: r.status for r in result.results}["files"] == "pass"
    assert envdoctor.guard(path, tier=1, device="cpu", deep=True) is not None
    (site / "edited_pkg" / "__init__.py").write_text("VALUE = 2\n")  # same size, same folder mtime
    assert envdoctor.guard(path, tier=1, device="cpu") is not None  # the fast path does not hash files
    with pytest.raises(NotCertifiedError, match=r"edited_pkg/__init__.py"):
        envdoctor.guard(path, tier=1, device="cpu", deep=True)
    assert main(["certify", "--matrix", path, "--tier", "1", "--device", "cpu", "--status", "--verify-files"]) == 1
    assert "files changed since install" in capsys.readouterr().out
    again = certify_environment(path, tier=1, device="cpu", verify_files=True)
    assert not again.certified and "edited_pkg/__init__.py" in again.summary


def test_a_skipped_guard_writes_to_stderr_even_when_warnings_are_ignored(tmp_path: Path) -> None:
    env = dict(os.environ, ENVDOCTOR_SKIP_GUARD="1")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", "import envdoctor; envdoctor.guard('llama31')"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0
    assert out.stderr.count("guard skipped for matrix 'llama31' tier 2 because ENVDOCTOR_SKIP_GUARD='1'") == 1
