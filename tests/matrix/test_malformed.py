"""The malformed-matrix corpus: each mistake is exit 2 and one line naming the file and the key, from every command.

Issue 15, finding 6: of 69 malformed matrices, 58 gave one clean error; deep nesting raised RecursionError, and
bad names, labels, booleans and indexes passed `check` while `validate` disagreed. Each case here is one
mistake in an otherwise valid matrix; `check --matrix FILE` and `matrix validate FILE` must both refuse it
with the same single line, in-process (fast) and, for a few, as a real process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from envdoctor._cli import main

HEAD = 'schema_version = 1\nname = "bad"\nversion = "1.0"\n'
R = 'reason = "r"\nevidence = ["e"]\n'
PKG = '[[packages]]\nname = "{name}"\n' + R
GOOD = f'[[packages]]\nname = "torch"\nspecifier = ">=2.4"\n{R}'


def pkg(**fields: str) -> str:
    """One package rule with its fields as TOML text (values already quoted where they need it)."""
    body = {"name": '"torch"', **fields}
    return "[[packages]]\n" + "".join(f"{k} = {v}\n" for k, v in body.items()) + R


def nested(depth: int, leaf: str = "1") -> str:
    return "{a = " * depth + leaf + "}" * depth


def case(body: str, needle: str, id: str, *, head: str = HEAD, raw: bytes | None = None,  # noqa: A002
         files: dict[str, str] | None = None, names: str | None = None) -> object:
    """A malformed matrix: `body` after the header, the text its one line must hold, other files it needs."""
    return pytest.param(head + body, needle, raw, files or {}, names, id=id)


CASES = [
    # TOML itself
    case("[[packages]\nname = 'x'\n", "malformed TOML", "toml-unclosed-header"),
    case('title = "a"\ntitle = "b"\n', "malformed TOML", "toml-duplicate-key"),
    case("title = hello\n", "malformed TOML", "toml-bare-word"),
    case('title = "a\x00b"\n', "malformed TOML", "toml-nul-character"),
    case("", "not UTF-8", "toml-not-utf8", raw=HEAD.encode() + b'title = "\xff\xfe"\n'),
    case(f"[[probes]]\nname = \"p\"\ntier = 1\nparams = {nested(1200)}\n", "nested too deeply", "toml-deep-inline"),
    case("title = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply", "toml-deep-arrays"),
    # the matrix's own keys
    case('titel = "x"\n', "unknown key 'titel' (did you mean 'title'?)", "unknown-top-key"),
    case('[pyhton]\nspecifier = ">=3.11"\n' + R, "unknown key 'pyhton' (did you mean 'python'?)", "unknown-table"),
    case("", "schema_version", "schema-version-2", head='schema_version = 2\nname = "bad"\nversion = "1.0"\n'),
    case("", "missing required key 'schema_version'", "schema-version-missing", head='name = "bad"\nversion = "1.0"\n'),
    case("", "matrix name 'Bad Name' must be lower-case", "matrix-name",
         head='schema_version = 1\nname = "Bad Name"\nversion = "1.0"\n'),
    case("", "version: invalid version 'soon'", "matrix-version", head='schema_version = 1\nname = "bad"\nversion = "soon"\n'),
    case('status = "retired"\n', "status", "status-literal"),
    case("title = 3\n", "title", "title-not-a-string"),
    case("extends = 3\n", "extends", "extends-not-a-reference"),
    case('extends = "./nope.toml"\n', "extends './nope.toml': matrix file not found", "extends-missing-file"),
    case('extends = "nosuchmatrix"\n', "extends 'nosuchmatrix': unknown matrix", "extends-unknown-name"),
    case('extends = "./loop.toml"\n', "cyclic 'extends'", "extends-cycle",
         files={"loop.toml": 'schema_version = 1\nname = "loop"\nversion = "1.0"\nextends = "./bad.toml"\n'}),
    case('extends = "./bad.toml"\n', "cyclic 'extends'", "extends-itself"),
    case('extends = "./parent.toml"\n', "packages[0].name: invalid package name", "extends-bad-parent",
         files={"parent.toml": 'schema_version = 1\nname = "parent"\nversion = "1.0"\n' + PKG.format(name="a b")},
         names="parent.toml"),
    # package names: PEP 508 only, never a pip option or shell text
    case(PKG.format(name="--index-url=x"), "packages[0].name: invalid package name '--index-url=x' (it looks like a pip option)",
         "name-pip-option"),
    case(PKG.format(name="-e"), "packages[0].name: invalid package name '-e'", "name-editable-flag"),
    case(PKG.format(name="torch vision"), "packages[0].name: invalid package name", "name-space"),
    case(PKG.format(name="torch; rm -rf ~"), "packages[0].name: invalid package name", "name-shell-semicolon"),
    case(PKG.format(name="$(touch pwned)"), "packages[0].name: invalid package name", "name-shell-substitution"),
    case(PKG.format(name="torch`id`"), "packages[0].name: invalid package name", "name-backticks"),
    case(PKG.format(name="torch>=2"), "packages[0].name: invalid package name", "name-with-specifier"),
    case(PKG.format(name="tørch"), "packages[0].name: invalid package name", "name-non-ascii"),
    case(PKG.format(name=""), "packages[0].name: invalid package name ''", "name-empty"),
    case(PKG.format(name="torch."), "packages[0].name: invalid package name", "name-trailing-dot"),
    # package fields
    case('[[packages]]\nname = "torch"\n', "missing required key 'packages[0].reason'", "package-no-reason"),
    case('[[packages]]\nname = "torch"\nreason = ""\n', "packages[0].reason: String should have at least 1 character",
         "package-empty-reason"),
    case(pkg(specifier='"=>2"'), "packages[0].specifier: invalid version specifier '=>2'", "specifier-typo"),
    case(pkg(specifier='"==2.*.1"'), "packages[0].specifier: invalid version specifier", "specifier-bad-wildcard"),
    case(pkg(specifier="2"), "packages[0].specifier", "specifier-a-number"),
    case(pkg(specifer='">=2"'), "unknown key 'packages[0].specifer' (did you mean 'specifier'?)", "package-key-typo"),
    case(pkg(no_deps='"yes"'), "packages[0].no_deps: Input should be a valid boolean", "no-deps-yes"),
    case(pkg(optional="1"), "packages[0].optional: Input should be a valid boolean", "optional-one"),
    case(pkg(protected='"true"'), "packages[0].protected: Input should be a valid boolean", "protected-string"),
    case(pkg(local='"+cu118"'), "packages[0].local: invalid local version label '+cu118'", "local-with-plus"),
    case(pkg(local='"cu 118"'), "packages[0].local: invalid local version label", "local-space"),
    case(pkg(local='"cu118;id"'), "packages[0].local: invalid local version label", "local-shell"),
    case(pkg(index_url='"ftp://mirror/simple"'), "packages[0].index_url: index 'ftp://mirror/simple' is neither",
         "index-ftp"),
    case(pkg(index_url='"cu118"'), "packages[0].index_url: index 'cu118' is neither", "index-bare-tag"),
    case(pkg(index_url='"https://"'), "packages[0].index_url: index 'https://' is neither", "index-no-host"),
    case(pkg(index_url='"pytorch:cuda11"'), "packages[0].index_url: index 'pytorch:cuda11' is neither", "index-bad-tag"),
    case(pkg(index_url='"https://x/simple --trusted-host x"'), "packages[0].index_url: index", "index-with-option"),
    case(pkg(source='"not a url"'), "packages[0].source: invalid source 'not a url'", "source-not-a-url"),
    case(pkg(source='"javascript:alert(1)"'), "packages[0].source: invalid source", "source-scheme"),
    case(pkg(evidence='"e"').replace(R, 'reason = "r"\n'), "packages[0].evidence", "evidence-not-a-list"),
    case(PKG.format(name="Torch") + PKG.format(name="torch"), "package 'torch' is listed twice", "package-twice"),
    case(pkg(group='"core"'), "package 'torch' names unknown install group 'core'", "package-unknown-group"),
    case('packages = "torch"\n', "packages", "packages-not-a-list"),
    # install groups
    case('[[install_groups]]\nname = "g"\norder = "1"\n', "install_groups[0].order: Input should be a valid integer",
         "group-order-string"),
    case('[[install_groups]]\nname = "g"\norder = 1000000000000000000000000000000\n', "install_groups[0].order: integer out of range",
         "group-order-huge"),
    case('[[install_groups]]\nname = "g"\norder = 1\nindex_url = "http//x"\n', "install_groups[0].index_url: index",
         "group-index"),
    case('[[install_groups]]\nname = "g"\norder = 1\n[[install_groups]]\nname = "g"\norder = 2\n',
         "install_groups: 'g' is listed twice", "group-twice"),
    # absent, protected, known_bad
    case('[[absent]]\nname = "--index-url=x"\n' + R, "absent[0].name: invalid package name '--index-url=x'", "absent-pip-option"),
    case('[[absent]]\nname = "tensor flow"\n' + R, "absent[0].name: invalid package name", "absent-space"),
    case('[[absent]]\nname = "tf"\n' + R + '[[absent]]\nname = "TF"\n' + R, "absent: 'TF' is listed twice", "absent-twice"),
    case('[[protected]]\nname = "torch|x"\n' + R, "protected[0].name: invalid package name", "protected-shell"),
    case('[[known_bad]]\nname = "a"\nspecifier = "==1"\nwith = "b >>= 2"\n' + R, "known_bad[0].with: invalid requirement",
         "known-bad-with"),
    case('[[known_bad]]\nname = "a"\n' + R, "missing required key 'known_bad[0].specifier'", "known-bad-no-specifier"),
    case('[[known_bad]]\nname = "a b"\nspecifier = "==1"\n' + R, "known_bad[0].name: invalid package name", "known-bad-name"),
    # renames
    case('[[renames]]\npackage = "p"\ncallable = "p.f"\nold = "a"\nnew = "b"\nkind = "renamed"\n' + R,
         "renames[0].kind: Input should be 'rename'", "rename-kind"),
    case('[[renames]]\npackage = "p"\ncallable = "p.f"\nold = "a"\n' + R, "rename of 'a' (rename) needs `new`", "rename-no-new"),
    case('[[renames]]\npackage = "p"\ncallable = "p.f"\nold = "max-seq"\nnew = "b"\n' + R, "renames[0].old: invalid keyword",
         "rename-old-not-identifier"),
    case('[[renames]]\npackage = "p"\ncallable = "os.system; x"\nold = "a"\nnew = "b"\n' + R,
         "renames[0].callable: invalid dotted name", "rename-callable"),
    case('[[renames]]\npackage = "p q"\ncallable = "p.f"\nold = "a"\nnew = "b"\n' + R, "renames[0].package: invalid package name",
         "rename-package"),
    case('[[renames]]\npackage = "p"\ncallable = "p.f"\nold = "a"\nnew = "b"\nremoved = "soon"\n' + R,
         "renames[0].removed: invalid version 'soon'", "rename-removed-version"),
    # symptoms
    case('[[symptoms]]\nid = "s"\npattern = "(unclosed"\ncause = "c"\nfix = "f"\n' + R, "symptoms[0].pattern: invalid regular expression",
         "symptom-bad-regex"),
    case('[[symptoms]]\nid = "s"\npattern = "^(a+)+$"\ncause = "c"\nfix = "f"\n' + R, "symptoms[0].pattern: unsafe regular expression",
         "symptom-catastrophic-regex"),
    case('[[symptoms]]\nid = "Bad Id"\npattern = "x"\ncause = "c"\nfix = "f"\n' + R, "symptoms[0].id: invalid name",
         "symptom-id"),
    case('[[symptoms]]\nid = "s"\npattern = "x"\ncause = "c"\nfix = "f"\ngpu = "tpu"\n' + R, "symptoms[0].gpu", "symptom-gpu"),
    # model features
    case('[[model_features]]\nkey = "k"\nfeature = "f"\nrequires = "transformers>>=4"\n' + R,
         "model_features[0].requires: invalid requirement", "feature-requirement"),
    case('[[model_features]]\nkey = "k"\nfeature = "f"\nrequires = "t>=1"\nequals = [1]\n' + R,
         "model_features[0].equals: input should be one of", "feature-equals-a-list"),
    # probes
    case('[[probes]]\nname = "p"\ntier = 4\n', "probes[0].tier: Input should be less than or equal to 3", "probe-tier-high"),
    case('[[probes]]\nname = "p"\ntier = "2"\n', "probes[0].tier: Input should be a valid integer", "probe-tier-string"),
    case('[[probes]]\nname = "p"\ntier = 1.5\n', "probes[0].tier", "probe-tier-float"),
    case(f'[[probes]]\nname = "p"\ntier = 1\nparams = {nested(40)}\n', "probes[0].params.a", "probe-params-deep"),
    case('[[probes]]\nname = "p"\ntier = 1\nparams = {lr = nan}\n', "probes[0].params.lr: nan is not a number", "probe-params-nan"),
    case('[[probes]]\nname = "rm -rf"\ntier = 1\n', "probes[0].name: invalid name", "probe-name"),
    # GPU rules, python, platform
    case('[[gpu.workloads]]\nname = "w"\nmin_vram_gib = 0\n' + R, "gpu.workloads[0].min_vram_gib: Input should be greater than 0",
         "workload-zero"),
    case('[[gpu.workloads]]\nname = "w"\nmin_vram_gib = inf\n' + R, "gpu.workloads[0].min_vram_gib: inf is not a number",
         "workload-inf"),
    case('[[gpu.workloads]]\nname = "w"\nmin_vram_gib = "24"\n' + R, "gpu.workloads[0].min_vram_gib: Input should be a valid number",
         "workload-string"),
    case('[gpu.bf16]\nfallback = "bf16"\n' + R, "gpu.bf16.fallback", "bf16-fallback"),
    case('[gpu.cuda]\nrequired = "yes"\n' + R, "gpu.cuda.required: Input should be a valid boolean", "cuda-required-yes"),
    case('[gpu.cuda]\npackages = ["bitsandbytes; rm"]\n' + R, "gpu.cuda.packages: invalid package name", "cuda-packages"),
    case('[gpu.cudaa]\nrequired = true\n' + R, "unknown key 'gpu.cudaa' (did you mean 'cuda'?)", "gpu-typo"),
    case('[python]\nspecifier = ">=3.11"\n', "missing required key 'python.reason'", "python-no-reason"),
    case('[[platform]]\nmarker = "sys_platform = linux"\n' + R, "platform[0].marker: invalid marker", "platform-marker"),
    case("[" + ".".join(["t"] * 40) + "]\nx = 1\n", "nested deeper than 32 levels", "deep-dotted-tables"),
]


def _write(tmp_path: Path, text: str, raw: bytes | None, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    path = tmp_path / "bad.toml"
    path.write_bytes(raw if raw is not None else text.encode("utf-8"))
    return path


def _one_line(err: str, path: Path, needle: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    [line] = lines
    assert line.startswith("envdoctor: error: ") and str(path) in line, line
    assert needle in line, line
    return line


def test_the_corpus_is_large_and_one_mistake_each() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "needle", "raw", "files", "names"), CASES)
def test_check_and_validate_refuse_with_the_same_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                     needle: str, raw: bytes | None, files: dict[str, str],
                                                     names: str | None) -> None:
    path = _write(tmp_path, text, raw, files)
    named = tmp_path / names if names else path
    assert main(["check", "--matrix", str(path)]) == 2
    out, err = capsys.readouterr()
    checked = _one_line(err, named, needle)
    assert out == ""
    assert main(["matrix", "validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert _one_line(err, named, needle) == checked  # one set of rules: both commands say the same
    assert out == ""


def test_a_good_matrix_passes_the_same_rules(tmp_path: Path) -> None:
    from envdoctor._matrix.loader import load_matrix

    body = HEAD + GOOD + pkg(name='"bitsandbytes"', local='"cu118"', index_url='"pytorch:cu118"', no_deps="true",
                             source='"git+https://github.com/x/y@v1"') + \
        '[[absent]]\nname = "tensorflow"\n' + R + f'[[probes]]\nname = "p"\ntier = 1\nparams = {nested(20)}\n'
    path = tmp_path / "good.toml"
    path.write_text(body, encoding="utf-8")
    m = load_matrix(path)
    assert m.package("bitsandbytes").no_deps is True  # type: ignore[union-attr]


SUBPROCESS = ["name-pip-option", "no-deps-yes", "toml-deep-inline", "probe-params-deep", "index-ftp"]


@pytest.mark.parametrize("which", SUBPROCESS)
@pytest.mark.parametrize("command", [["check", "--matrix"], ["matrix", "validate"]], ids=["check", "validate"])
def test_a_real_process_exits_2_with_one_line(tmp_path: Path, which: str, command: list[str]) -> None:
    [param] = [c for c in CASES if c.id == which]  # type: ignore[attr-defined]
    text, needle, raw, files, names = param.values  # type: ignore[attr-defined]
    path = _write(tmp_path, text, raw, files)
    proc = subprocess.run([sys.executable, "-m", "envdoctor", *command, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    _one_line(proc.stderr, path, needle)
