"""`matrix validate`: conflicts explained from the resolver's own chain, runtime rules, what stays unchecked.

Tests marked `network` ask the real resolver (uv, or pip with --backend pip) and the configured package index.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from envdoctor._cli import main
from envdoctor._matrix.lines import Line, file_lines, matrix_lines
from envdoctor._matrix.loader import available, load_matrix
from envdoctor._matrix.targets import target_platform, target_pythons
from envdoctor._matrix.trust import (
    Problem,
    TargetResult,
    Validation,
    explain_conflict,
    runtime_problems,
    validate_matrix,
    validate_requirements,
)
from envdoctor._resolver import Requested
from envdoctor._resolver._conflict import from_pip, from_uv
from envdoctor.errors import MatrixError, UsageError

SEED_000 = """\
# seed 000_558999b393560a17.txt, STEP 2-6, as written (its 'VERIFIED' LLAMA-3.1 matrix)
torch==2.4.0+cu118
transformers==4.46.3
accelerate==1.2.1
peft==0.13.2
bitsandbytes==0.45.0
datasets==3.2.0
tokenizers==0.21.0
tensorboard==2.18.0
trl==0.12.2
"""
# Real refusal texts, captured from uv 0.13 and pip 23.2 on the seed's pins.
UV_CHAIN = (
    "Because transformers==4.46.3 depends on tokenizers>=0.20,<0.21 and you require transformers==4.46.3, "
    "we can conclude that you require tokenizers>=0.20,<0.21.",
    "And because you require tokenizers==0.21.0, we can conclude that your requirements are unsatisfiable.",
)
PIP_CHAIN = ("The user requested tokenizers==0.21.0", "transformers 4.46.3 depends on tokenizers<0.21 and >=0.20")
LINES = [Line("transformers==4.46.3", "m packages.transformers"), Line("tokenizers==0.21.0", "m packages.tokenizers")]
WANT = "transformers 4.46.3 requires tokenizers<0.21,>=0.20; the matrix pins tokenizers==0.21.0 (m packages.tokenizers)"


def _uv(chain: tuple[str, ...], lines: list[Requested]):  # type: ignore[no-untyped-def]
    """The conflict as the uv backend reads it from uv's output."""
    return from_uv("error: No solution found when resolving dependencies\n  cause: " + "\n         ".join(chain), lines)


def _pip(chain: tuple[str, ...], lines: list[Requested]):  # type: ignore[no-untyped-def]
    """The conflict as the pip backend reads it from pip's ResolutionImpossible output."""
    return from_pip("ERROR: Cannot install x because these package versions have conflicting dependencies.\n\n"
                    "The conflict is caused by:\n" + "".join(f"    {c}\n" for c in chain), lines)


@pytest.mark.parametrize("conflict", [pytest.param(_uv(UV_CHAIN, LINES), id="uv"),
                                      pytest.param(_pip(PIP_CHAIN, LINES), id="pip")])
def test_conflict_names_both_sides_and_the_line(conflict) -> None:  # type: ignore[no-untyped-def]
    assert explain_conflict(conflict, LINES, "the matrix").message == WANT


def test_conflict_on_a_range_says_asks_for() -> None:
    chain = ("Because trl==0.12.2 depends on transformers<4.47.0 and you require trl==0.12.2, we can conclude ...",)
    lines = [Line("trl==0.12.2", "f:1"), Line("transformers>=4.47", "f:2")]
    got = explain_conflict(_uv(chain, lines), lines, "the file").message
    assert got == "trl 0.12.2 requires transformers<4.47.0; the file asks for transformers>=4.47 (f:2)"


def test_a_pin_that_meets_the_dependency_is_not_blamed() -> None:
    chain = ("Because all versions of gamma depend on beta==1.0 and you require gamma==1.0, we can conclude that you "
             "require beta==1.0.", "And because you require beta==2.0, we can conclude that your requirements are "
             "unsatisfiable.")
    lines = [Line("gamma==1.0", "f:1"), Line("beta==2.0", "f:2")]
    assert explain_conflict(_uv(chain, lines), lines, "the file").message == (
        "gamma requires beta==1.0; the file pins beta==2.0 (f:2)")
    met = [Line("gamma==1.0", "f:1"), Line("beta==1.0", "f:2")]
    assert explain_conflict(_uv(chain, met), met, "the file").message.startswith("Because all versions of gamma")


def test_unexplained_conflict_keeps_the_resolvers_words() -> None:
    chain = ("Because torch==2.4.0 has no wheels with a matching Python ABI tag (e.g., `cp313`) ...",)
    lines = [Line("torch==2.4.0", "m")]
    p = explain_conflict(_uv(chain, lines), lines, "the matrix")
    assert p.kind == "conflict" and "no wheels with a matching Python ABI tag" in p.message


def test_runtime_rule_catches_a_pair_that_metadata_allows() -> None:
    galore = load_matrix("galore-trl086")
    installs = {"trl": Version("0.8.6"), "transformers": Version("5.0.0")}
    problems = runtime_problems(installs, galore.known_bad)  # type: ignore[arg-type]
    assert len(problems) == 1 and "tokenizer=" in problems[0].message
    assert "transformers 5.0.0 with trl 0.8.6" in problems[0].message
    ok = {"trl": Version("0.8.6"), "transformers": Version("4.57.6")}
    assert runtime_problems(ok, galore.known_bad) == []  # type: ignore[arg-type]


def test_absent_packages_in_the_resolved_set_are_problems() -> None:
    got = runtime_problems({"torchvision": Version("0.19.0")}, (), absent=["torchvision"])  # type: ignore[arg-type]
    assert got[0].kind == "absent"


def test_pythons_and_platform_come_from_the_matrix() -> None:
    assert target_pythons(load_matrix("llama31@2024.12").python.specifier) == ["3.9", "3.12"]  # type: ignore[union-attr]
    assert target_pythons(load_matrix("llama31@2026.11").python.specifier)[0] == "3.11"  # type: ignore[union-attr]
    assert target_platform(load_matrix("llama31@2026.11")) == "linux"


def test_other_index_and_vcs_packages_are_listed_as_unchecked() -> None:
    lines, unchecked, problems = matrix_lines(load_matrix("colab-axolotl"))
    reqs = {ln.requirement for ln in lines}
    assert "torch==2.4.0" in reqs  # the public version stands in for +cu118
    assert not any(r.startswith("axolotl") for r in reqs)  # a git source with --no-deps is not resolved
    text = " ".join(u.reason for u in unchecked)
    assert "pytorch:cu118" in text and "axolotl" in text and "--no-deps" in text
    assert problems == []


def test_a_malformed_index_hint_is_refused_when_the_matrix_loads(write_matrix) -> None:  # type: ignore[no-untyped-def]
    # one set of rules: check and validate both load the matrix, so both refuse it (issue 15, finding 6)
    path = write_matrix('[[packages]]\nname = "torch"\nspecifier = "==2.4.0"\nindex_url = "cu118"\n'
                        'reason = "r"\nevidence = ["e"]\n')
    with pytest.raises(MatrixError, match=r"packages\[0\]\.index_url: index 'cu118' is neither"):
        load_matrix(path)


def test_requirements_are_read_with_their_line_numbers(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(SEED_000, encoding="utf-8")
    lines, unchecked = file_lines(req)
    by_name = {ln.key: ln for ln in lines}
    assert by_name["tokenizers"].origin == "requirements.txt:8"
    assert by_name["torch"].requirement == "torch==2.4.0"
    assert "local build" in unchecked[0].reason


def test_a_name_on_two_lines_is_one_requirement_as_pip_reads_it(tmp_path: Path) -> None:
    # tloen/alpaca-lora's requirements.txt lists `black` and `black[jupyter]`; pip merges them (issue 13)
    req = tmp_path / "requirements.txt"
    req.write_text("black\nblack[jupyter]\nfire\n", encoding="utf-8")
    lines, unchecked = file_lines(req)
    assert [(ln.requirement, ln.origin) for ln in lines] == [
        ("black", "requirements.txt:1"), ("black[jupyter]", "requirements.txt:2"), ("fire", "requirements.txt:3")]
    assert unchecked == []


def test_what_pip_accepts_and_validate_cannot_apply_is_listed_not_refused(tmp_path: Path) -> None:
    # pip's SUPPORTED_OPTIONS (req_file.py): an editable line and options the fix would refuse are legal here
    req = tmp_path / "requirements.txt"
    req.write_text("--trusted-host mirror.example\n--pre\n-e .\nfire\n", encoding="utf-8")
    lines, unchecked = file_lines(req)
    assert [ln.requirement for ln in lines] == ["fire"]
    assert [u.reason.split(": not applied")[0] for u in unchecked] == [
        "requirements.txt:1: --trusted-host mirror.example", "requirements.txt:2: --pre", "requirements.txt:3: -e ."]
    req.write_text("--extra-index-url https://idx.example/simple\nfire\n", encoding="utf-8")
    assert [u.reason for u in file_lines(req)[1]] == [  # never added to the resolution silently (issue 15)
        "requirements.txt: names its own sources (https://idx.example/simple): not used here; validate resolves "
        "with pip's configured index"]
    req.write_text("--no-such-option\nfire\n", encoding="utf-8")
    with pytest.raises(UsageError, match="requirements.txt:1: --no-such-option is not an option pip takes"):
        file_lines(req)


def _target(ok: bool, *kinds: str) -> TargetResult:
    return TargetResult("3.11", "linux", ok, "uv", 0.1, (), tuple(Problem(k, k) for k in kinds))  # type: ignore[arg-type]


@pytest.mark.parametrize(("targets", "problems", "verdict"), [
    pytest.param([_target(True)], [], "ok", id="ok"),
    pytest.param([_target(False, "unbuilt")], [], "not-evaluated", id="not-evaluated"),
    pytest.param([_target(False, "unbuilt"), _target(False, "conflict")], [], "conflict", id="a-refusal-stands"),
    pytest.param([_target(False, "runtime")], [], "broken", id="a-rule"),
    pytest.param([_target(False, "failed")], [], "error", id="the-resolver-failed"),
    pytest.param([_target(False, "failed"), _target(False, "unbuilt")], [], "error", id="error-beats-unbuilt"),
    pytest.param([_target(True)], [Problem("evidence", "e")], "broken", id="malformed"),
    pytest.param([_target(False, "unbuilt")], [Problem("probe", "p")], "broken", id="malformed-beats-unbuilt"),
])
def test_the_verdict_never_calls_a_missing_wheel_a_conflict(targets, problems, verdict) -> None:  # type: ignore[no-untyped-def]
    v = Validation("f", tuple(targets), tuple(problems))
    assert v.verdict == verdict and v.ok is (verdict == "ok")


def test_cli_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["matrix", "validate"]) == 2
    assert main(["matrix", "validate", "-r", str(tmp_path / "missing.txt")]) == 2
    assert main(["matrix", "validate", "llama31", "--python-version", "three"]) == 2
    assert main(["matrix", "validate", "llama31", "--platform", "linx"]) == 2  # was a "conflict", exit 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(e.startswith("envdoctor: error:") for e in err)
    assert "did you mean 'linux'?" in err[3] and "macos-x86_64" in err[3]


# ----------------------------------------------------------------------------- the real resolver


@pytest.mark.network
def test_seed_000_pins_conflict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The seed says 'VERIFIED, all compatible'; the resolver says tokenizers 0.21.0 cannot go with transformers 4.46.3."""
    req = tmp_path / "requirements.txt"
    req.write_text(SEED_000, encoding="utf-8")
    assert main(["matrix", "validate", "-r", str(req), "--python-version", "3.12"]) == 1
    out = capsys.readouterr().out
    assert ("transformers 4.46.3 requires tokenizers<0.21,>=0.20; the file pins tokenizers==0.21.0 "
            "(requirements.txt:8)") in out
    assert "not checked: requirements.txt:2" in out  # the +cu118 build


@pytest.mark.network
def test_pip_backend_gives_the_same_sentence(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("transformers==4.46.3\ntokenizers==0.21.0\n", encoding="utf-8")
    v = validate_requirements(req, python_version="3.12", backend="pip")
    assert not v.ok and v.targets[0].backend == "pip"
    assert v.all_problems[0].message == ("transformers 4.46.3 requires tokenizers<0.21,>=0.20; "
                                         "the file pins tokenizers==0.21.0 (requirements.txt:2)")


@pytest.mark.network
def test_a_matrix_pinning_past_trls_cap_names_both_sides(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix('extends = "llama31@2024.12"\n[[packages]]\nname = "transformers"\nspecifier = "==4.47.0"\n'
                        'reason = "try fix B without moving trl"\nevidence = ["FACTS.md §1"]\n'
                        '[[packages]]\nname = "tokenizers"\nspecifier = "==0.21.0"\nreason = "r"\nevidence = ["e"]\n',
                        name="fixb")
    said: list[str] = []
    v = validate_matrix(load_matrix(path), python_version="3.12", progress=said.append)
    assert said == ["resolving fixb@1.0 (12 requirements) for Python 3.12 / linux"]  # progress before the wait
    assert not v.ok
    assert ("trl 0.12.2 requires transformers<4.47.0; the matrix pins transformers==4.47.0 "
            "(fixb@1.0 packages.transformers)") in v.all_problems[0].message


@pytest.mark.network
def test_a_user_matrix_that_lets_transformers_5_in_breaks_the_runtime_rule(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix('extends = "galore-trl086"\n[[packages]]\nname = "transformers"\nspecifier = ">=5,<6"\n'
                        'reason = "newer"\nevidence = ["none"]\n', name="galore5")
    v = validate_matrix(load_matrix(path), python_version="3.12")
    kinds = [p.kind for p in v.all_problems]
    assert not v.ok and kinds == ["runtime"]
    assert "trl 0.8.6" in v.all_problems[0].message and "tokenizer=" in v.all_problems[0].message


@pytest.mark.network
def test_every_bundled_matrix_validates(capsys: pytest.CaptureFixture[str]) -> None:
    """What CI runs: every bundled matrix resolves for its lowest and highest Python, and breaks no runtime rule."""
    assert main(["matrix", "validate", "--all"]) == 0, capsys.readouterr().out
    captured = capsys.readouterr()
    out = captured.out
    assert "resolving llama31@2024.12" in captured.err  # progress on stderr, the report on stdout
    assert out.count(": OK") == len([e for e in available() if e.bundled])
    assert "not checked: torch==2.4.0 +cu118 from pytorch:cu118" in out
    assert "axolotl ==0.4.0: installed from git+" in out


def test_validate_refuses_a_matrix_whose_probe_params_would_run_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # issue 15, finding 1: `matrix validate` called this matrix OK; certify then truncated the named file
    marker = tmp_path / "truncated.txt"
    marker.write_text("keep me\n", encoding="utf-8")
    path = tmp_path / "hostile.toml"
    path.write_text(
        'schema_version = 1\nname = "hostile"\nversion = "1.0"\n\n'
        '[[probes]]\nname = "training-args"\ntier = 2\n'
        f'params = {{ class = "logging.basicConfig", keywords = {{ filename = "{marker}", filemode = "w" }} }}\n\n'
        '[[probes]]\nname = "imports"\ntier = 1\nparams = { modules = ["subprocess"] }\n', encoding="utf-8")
    result = validate_matrix(load_matrix(str(path)))
    kinds = [p.kind for p in result.problems]
    assert not result.ok and kinds.count("probe") == 2
    assert any("training-args" in p.message and "params.class" in p.message for p in result.problems)
    assert any("'subprocess' is not an import name" in p.message for p in result.problems)
    assert marker.read_text(encoding="utf-8") == "keep me\n"


def test_every_bundled_matrix_passes_its_probe_params() -> None:
    from envdoctor._certify.params import validate_probe_params

    for entry in available():
        assert validate_probe_params(load_matrix(entry.path)) == [], entry.ref
