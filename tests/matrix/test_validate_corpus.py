"""`matrix validate FILE` against plain pip's own verdict on real requirement files (issue 13).

Each file under corpus/requirements/ is a requirements.txt from a public repository (cited at its top); beside
it, NAME.pip.toml records what plain pip concluded on it, run before envdoctor was (pip 23.2.1, CPython 3.11.7,
linux x86_64, this machine's pip configuration): its verdict, the pair it blamed, and what it built from sdists.
The test validates each file twice: with --allow-build (trusting the sdists' build backends, as pip does) the
verdict must be pip's; without it, it must be pip's or "not evaluated" naming only packages pip built from
source, never a conflict pip did not find.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib

from envdoctor._cli import main
from envdoctor._matrix.targets import running_platform
from envdoctor._matrix.trust import validate_requirements

CORPUS = Path(__file__).parent / "corpus" / "requirements"
FILES = sorted(CORPUS.glob("*.txt"))
# pip's verdicts were recorded for CPython 3.11 on linux x86_64; another target is another question (torch 1.12.0
# has cp310 wheels, so the Chinese-LLaMA-Alpaca file is satisfiable elsewhere)
RECORDED_FOR = ((3, 11), "linux")


def _pip(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.with_suffix(".pip.toml").read_text(encoding="utf-8"))


def _validate(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    rc = main(["matrix", "validate", str(path), "--format", "json", *args])
    captured = capsys.readouterr()
    assert captured.out, captured.err  # a usage error or a resolver that could not run says why on stderr
    result: dict[str, Any] = json.loads(captured.out)["results"][0]
    assert rc == (0 if result["verdict"] == "ok" else 1)
    return result


def _blamed(result: dict[str, Any]) -> str:
    return " ".join(p["message"] for t in result["targets"] for p in t["problems"] if p["kind"] == "conflict")


def test_the_corpus_is_what_the_issue_asks_for() -> None:
    pips = {p.stem: _pip(p) for p in FILES}
    assert len(FILES) >= 8 and all(p.with_suffix(".pip.toml").is_file() for p in FILES)
    assert all(p.read_text(encoding="utf-8").startswith("# ") for p in FILES)  # each cites its source
    verdicts = [v["verdict"] for v in pips.values()]
    assert "conflict" in verdicts
    assert any(v["verdict"] == "ok" and v["sdists"] for v in pips.values())  # satisfiable, with a source-only package
    text = (CORPUS / "alpaca-lora.txt").read_text(encoding="utf-8").splitlines()
    assert "black" in text and "black[jupyter]" in text


@pytest.mark.network
@pytest.mark.skipif((sys.version_info[:2], running_platform()) != RECORDED_FOR,
                    reason="pip's verdicts were recorded on CPython 3.11, linux x86_64")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validate_gives_plain_pips_verdict(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    want = _pip(path)
    trusted = _validate(path, capsys, "--allow-build")
    assert trusted["verdict"] == want["verdict"], trusted
    if want["verdict"] == "ok":
        assert len(trusted["targets"][0]["installs"]) == want["installs"]
    else:
        _names_a_pair_pip_or_the_metadata_names(trusted, want)

    untrusted = _validate(path, capsys)
    if untrusted["verdict"] == "not-evaluated":
        unbuilt = untrusted["targets"][0]["unbuilt"]
        assert unbuilt and set(unbuilt) <= set(want["sdists"]), untrusted  # named, and only what pip had to build
    else:
        assert untrusted["verdict"] == want["verdict"], untrusted
        if want["verdict"] == "conflict":
            _names_a_pair_pip_or_the_metadata_names(untrusted, want)
        else:
            assert not want["sdists"]  # wheels-only OK, and pip built nothing it could have judged otherwise


def _names_a_pair_pip_or_the_metadata_names(result: dict[str, Any], want: dict[str, Any]) -> None:
    blamed = _blamed(result)
    pairs = [want["pair"], *want.get("also", [])]
    assert any(all(name in blamed for name in pair) for pair in pairs), blamed


@pytest.mark.network
def test_a_foreign_platform_names_what_it_could_not_evaluate(capsys: pytest.CaptureFixture[str]) -> None:
    # pathtools (wandb 0.15.3's requirement) has no wheel anywhere: from Windows' wheels it cannot be evaluated,
    # and no build is possible for a platform that is not this one
    result = _validate(CORPUS / "qlora.txt", capsys, "--platform", "windows", "--python-version", "3.11")
    assert result["verdict"] == "not-evaluated" and result["targets"][0]["unbuilt"] == ["pathtools"]
    assert "conflict" not in json.dumps(result["targets"][0]["problems"])


@pytest.mark.network
def test_the_pip_backend_also_says_not_evaluated() -> None:
    # pip's --only-binary says "no matching distribution found for pathtools"; `pip index versions` shows it exists
    v = validate_requirements(CORPUS / "qlora.txt", backend="pip")
    assert v.verdict == "not-evaluated" and v.targets[0].unbuilt == ("pathtools",), v


def test_allow_build_is_for_this_interpreter_only(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(CORPUS / "qlora.txt")
    other = "3.12" if sys.version_info[:2] != (3, 12) else "3.13"
    assert main(["matrix", "validate", path, "--allow-build", "--python-version", other]) == 2
    assert main(["matrix", "validate", "llama31", "--allow-build"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("envdoctor: error:") for e in err)
    assert "this interpreter only" in err[0] and "only for a requirements file" in err[1]


# ----------------------------------------------------------------------------- offline: an sdist we wrote


def _sdist(folder: Path, marker: Path) -> Path:
    """brokenmeta 1.0 as an sdist only; its in-tree build backend writes `marker` on import, then fails."""
    import io
    import tarfile

    files = {
        "PKG-INFO": "Metadata-Version: 2.1\nName: brokenmeta\nVersion: 1.0\n",
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
                      "raise RuntimeError('brokenmeta: this build backend always fails')\n",
    }
    path = folder / "brokenmeta-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"brokenmeta-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel with just its metadata (py3-none-any)."""
    import zipfile

    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{info}/METADATA": meta, f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
             "Tag: py3-none-any\n", f"{name}/__init__.py": ""}
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for arc, text in files.items():
            whl.writestr(arc, text)
        whl.writestr(f"{info}/RECORD", "".join(f"{arc},,\n" for arc in files) + f"{info}/RECORD,,\n")
    return path


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """pip (and uv, through pip's configuration) see only a folder holding brokenmeta's sdist."""
    links = tmp_path / "links"
    links.mkdir()
    marker = tmp_path / "MARKER"
    _sdist(links, marker)
    _wheel(links, "alpha", "1.0", ("beta==1.0",))
    _wheel(links, "beta", "1.0")
    _wheel(links, "beta", "2.0")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    req = tmp_path / "requirements.txt"
    req.write_text("brokenmeta==1.0\n", encoding="utf-8")
    return {"req": req, "marker": marker, "dir": tmp_path}


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_an_sdist_is_not_evaluated_and_its_backend_never_runs(backend: str, offline: dict[str, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    result = _validate(offline["req"], capsys, "--backend", backend)
    assert result["verdict"] == "not-evaluated" and result["targets"][0]["unbuilt"] == ["brokenmeta"], result
    assert not offline["marker"].exists()


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_allow_build_runs_the_backend_and_a_failed_build_is_an_error_not_a_conflict(
        backend: str, offline: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # plain pip: "metadata-generation-failed"; neither ok nor a conflict
    result = _validate(offline["req"], capsys, "--backend", backend, "--allow-build")
    assert offline["marker"].exists()  # trusted: the backend ran, as it does under plain pip
    assert result["verdict"] == "error", result
    assert "brokenmeta" in json.dumps(result["targets"][0]["problems"])


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_a_refusal_among_wheels_stands_whatever_the_sdist_requires(backend: str, offline: dict[str, Path],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # the lines left once brokenmeta is set aside cannot be installed, so neither can the file (pip: ResolutionImpossible)
    req = offline["dir"] / "mixed.txt"
    req.write_text("brokenmeta==1.0\nalpha==1.0\nbeta==2.0\n", encoding="utf-8")
    result = _validate(req, capsys, "--backend", backend)
    assert result["verdict"] == "conflict", result
    blamed = _blamed(result)  # uv: "all versions of alpha depend on", pip: "alpha 1.0 depends on"
    assert blamed.startswith("alpha") and "requires beta==1.0; the file pins beta==2.0 (mixed.txt:3)" in blamed
    assert result["targets"][0]["unbuilt"] == ["brokenmeta"] and not offline["marker"].exists()
    fine = offline["dir"] / "fine.txt"
    fine.write_text("brokenmeta==1.0\nalpha==1.0\n", encoding="utf-8")
    assert _validate(fine, capsys, "--backend", backend)["verdict"] == "not-evaluated"
