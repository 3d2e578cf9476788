"""Sources need trust: a shared matrix's index or URL is previewed wheels only and refused until the user trusts
it, a group's index serves only its group, and no preview (fix --dry-run, matrix validate) runs a build backend."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from fixtools import build_wheel

from envdoctor._cli import main
from envdoctor._fix.targets import from_matrix, resolution_runs
from envdoctor._matrix.loader import load_matrix
from envdoctor._resolver import Sources
from envdoctor._resolver.sources import TRUSTED_SOURCES_ENV, SourceTrust

BACKEND = '''\
import pathlib
pathlib.Path({marker!r}).write_text("a build backend ran\\n")  # on import: any hook call runs it


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    raise RuntimeError("planted")


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("planted")
'''


def build_sdist(folder: Path, name: str, version: str, marker: Path) -> Path:
    """An sdist whose in-tree build backend writes `marker` as soon as any front end loads it."""
    files = {
        "pyproject.toml": f'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
                          f'[project]\nname = "{name}"\nversion = "{version}"\n',
        "backend.py": BACKEND.format(marker=str(marker)),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    out = folder / f"{name}-{version}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def simple_index(root: Path, files: list[Path]) -> Path:
    """A PEP 503 index folder (file:// URL) serving `files`, grouped by project name."""
    for f in files:
        project = root / f.name.split("-")[0].replace("_", "-").lower()
        project.mkdir(parents=True, exist_ok=True)
        (project / f.name).write_bytes(f.read_bytes())
    for project in root.iterdir():
        links = "".join(f'<a href="{p.name}">{p.name}</a>\n' for p in sorted(project.iterdir()) if p.name != "index.html")
        (project / "index.html").write_text(f"<html><body>\n{links}</body></html>\n", encoding="utf-8")
    return root


@pytest.fixture
def planted(tmp_path: Path) -> dict[str, Path]:
    """A hostile index (evil's sdist, six 99.0, tiny) a matrix names, an empty 'own' index, and a wheelhouse."""
    marker = tmp_path / "MARKER"
    build = tmp_path / "build"
    build.mkdir()
    files = [build_sdist(build, "evil", "1.0", marker), build_wheel(build, "six", "99.0"), build_wheel(build, "tiny", "1.0")]
    house = tmp_path / "house"
    house.mkdir()
    build_wheel(house, "six", "1.0")
    build_wheel(house, "needs-six", "1.0", ["six"])
    own = tmp_path / "own"
    own.mkdir()
    return {"index": simple_index(tmp_path / "planted", files), "marker": marker, "house": house, "own": own}


def _matrix(write_matrix, index: Path, package: str) -> str:  # type: ignore[no-untyped-def]
    return write_matrix(f'''
[[install_groups]]
name = "theirs"
order = 1
index_url = "{index.as_uri()}"
[[packages]]
name = "{package}"
specifier = "==1.0"
group = "theirs"
reason = "from their index"
[[packages]]
name = "needs-six"
specifier = "==1.0"
reason = "has no index of its own"
''', name="theirs")


def _fix(planted: dict[str, Path], python: str, ref: str, backend: str, *extra: str) -> list[str]:
    return ["fix", "--matrix", ref, "--python", python, "--index-url", planted["own"].as_uri(),
            "--find-links", str(planted["house"]), "--backend", backend, "--format", "json", *extra]


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_a_dry_run_never_builds_from_an_untrusted_index_and_says_what_it_could_not_evaluate(
        backend, planted, make_venv, write_matrix, capsys) -> None:  # type: ignore[no-untyped-def]
    # Issue 15, finding 3: the group's index was an extra index for the whole resolution, and pip built evil's sdist
    # to read its metadata: "nothing changes" ran the sdist's backend.
    python = make_venv()
    rc = main(_fix(planted, python, _matrix(write_matrix, planted["index"], "evil"), backend, "--dry-run"))
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert not planted["marker"].exists()
    assert rc == 1 and not plan["ok"]
    text = "\n".join(plan["problems"])
    assert f"{planted['index'].as_uri()}: a file source is used only when listed in" in text
    assert "could not be evaluated without building: evil" in text


def test_a_groups_index_serves_only_that_group(planted, make_venv, write_matrix, monkeypatch, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Issue 15, finding 3: needs-six has no index of its own and resolved to the planted six 99.0.
    listed = tmp_path / "trusted.txt"
    listed.write_text(f"# the user vouches for it\n{planted['index'].as_uri()}\n", encoding="utf-8")
    monkeypatch.setenv(TRUSTED_SOURCES_ENV, str(listed))
    python = make_venv()
    for backend in ("pip", "uv"):
        rc = main(_fix(planted, python, _matrix(write_matrix, planted["index"], "tiny"), backend, "--dry-run"))
        plan = json.loads(capsys.readouterr().out)["plan"]
        assert rc == 0 and plan["ok"], plan["problems"]
        after = {c["name"]: c["after"] for c in plan["changes"]}
        assert after["six"] == "1.0" and after["tiny"] == "1.0", (backend, after)
        assert all("unsafe-best-match" not in " ".join(r["command"]) for r in plan["resolutions"]), backend


def test_a_fix_refuses_an_untrusted_source_and_trust_sources_allows_only_https(planted, write_matrix) -> None:  # type: ignore[no-untyped-def]
    ref = _matrix(write_matrix, planted["index"], "tiny")
    target = from_matrix(load_matrix(ref), trust=SourceTrust(https=True))
    assert [p.name for p in target.packages if p.untrusted] == ["tiny"]  # file:// needs the list, not the flag
    runs = resolution_runs(target, Sources(index_url="https://mine.example/simple"))
    assert [(r.index_url, r.only_binary, [p.name for p in r.packages]) for r in runs] == [
        (None, False, ["needs-six"]), (planted["index"].as_uri(), True, ["tiny"])]
    assert runs[1].sources.index_url == planted["index"].as_uri() and not runs[1].sources.extra_index_urls
    trust = SourceTrust(https=False)
    assert "pass --trust-sources" in (trust.problem("https://idx.example/simple") or "")
    assert SourceTrust(https=True).problem("https://idx.example/simple") is None
    assert SourceTrust(https=True).problem("git+https://host.example/x.git@v1") is None
    assert "a http source is used only when listed" in (SourceTrust(https=True).problem("http://idx.example/s") or "")
    assert SourceTrust(listed=("http://idx.example/s",)).problem("http://idx.example/s/") is None
    assert SourceTrust(listed=("https://idx.example/s",)).problem("https://idx.example/sneaky") is not None


def test_bundled_matrices_and_symbolic_indexes_are_trusted(monkeypatch, write_matrix) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVDOCTOR_PYTORCH_INDEX", "https://torch.example/whl/{tag}")
    for ref in ("llama31", "colab-axolotl"):
        assert not [p for p in from_matrix(load_matrix(ref), trust=SourceTrust()).packages if p.untrusted], ref
    ref = write_matrix('[[packages]]\nname = "torch"\nspecifier = "==2.4.0"\nindex_url = "pytorch:cu118"\n'
                       'reason = "the user\'s own torch index"\n', name="mine")
    assert not from_matrix(load_matrix(ref), trust=SourceTrust()).packages[0].untrusted


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_matrix_validate_never_runs_a_build_backend(backend, planted, write_matrix, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    # validate resolves the configured index (here pip's configuration points at the planted one) from wheels only.
    monkeypatch.setenv("PIP_INDEX_URL", planted["index"].as_uri())
    ref = write_matrix('[[packages]]\nname = "evil"\nspecifier = "==1.0"\nreason = "an sdist only"\n', name="sdist")
    rc = main(["matrix", "validate", ref, "--backend", backend, "--python-version", "3.11", "--format", "json"])
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert not planted["marker"].exists()
    assert rc == 1
    assert any("evil: could not be evaluated without building" in u["reason"] for u in result["unchecked"]), result


@pytest.mark.parametrize("backend", ["pip", "uv"])
def test_an_untrusted_direct_url_is_never_built_in_a_preview(backend, planted, make_venv, write_matrix, capsys) -> None:  # type: ignore[no-untyped-def]
    sdist = planted["index"] / "evil" / "evil-1.0.tar.gz"
    ref = write_matrix(f'[[packages]]\nname = "evil"\nsource = "{sdist.as_uri()}"\nreason = "a URL"\n', name="url")
    rc = main(_fix(planted, make_venv(), ref, backend, "--dry-run"))
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert not planted["marker"].exists()
    assert rc == 1 and "could not be evaluated without building: evil" in "\n".join(plan["problems"])


def test_trust_sources_reaches_the_fix_request() -> None:
    import argparse

    from envdoctor._cli import fix as cli_fix

    parser = argparse.ArgumentParser()
    cli_fix.register(parser.add_subparsers())
    assert cli_fix.fix_request(parser.parse_args(["fix", "--trust-sources"])).trust_sources
    assert not cli_fix.fix_request(parser.parse_args(["fix"])).trust_sources
