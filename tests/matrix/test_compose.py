"""Composable matrices: `extends` takes a list, shared parents are merged once, a child removes inherited rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from envdoctor._matrix.loader import load_matrix
from envdoctor.errors import MatrixError

R = 'reason = "r"\nevidence = ["e"]\n'


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'schema_version = 1\nname = "{name}"\nversion = "1.0"\n{body}', encoding="utf-8")
    return path


@pytest.fixture
def fragments(tmp_path: Path) -> Path:
    _write(tmp_path, "gpu", f'status = "fragment"\n[gpu.cuda]\nrequired = true\n{R}'
                            f'[[probes]]\nname = "imports"\ntier = 1\n[[probes]]\nname = "llama31-rope"\ntier = 2\n')
    _write(tmp_path, "stack", f'extends = "./gpu.toml"\n[[packages]]\nname = "torch"\n{R}'
                              f'[[model_features]]\nkey = "rope_scaling.rope_type"\nequals = "llama3"\n'
                              f'requires = "transformers>=4.43.0"\nfeature = "llama3 rope"\n{R}')
    _write(tmp_path, "data", f'[[packages]]\nname = "datasets"\n{R}[[probes]]\nname = "imports"\ntier = 0\n')
    return tmp_path


def test_a_list_merges_left_to_right_and_a_shared_parent_once(fragments: Path) -> None:
    leaf = _write(fragments, "leaf", 'extends = ["./stack.toml", "./data.toml", "./gpu.toml"]\n')
    m = load_matrix(str(leaf))
    assert m.chain == ("gpu@1.0", "stack@1.0", "data@1.0", "leaf@1.0")  # gpu once, where stack first needs it
    assert [p.name for p in m.packages] == ["torch", "datasets"]
    assert {p.name: p.tier for p in m.probes} == {"imports": 0, "llama31-rope": 2}  # data's imports overrides
    assert m.extends == ["./stack.toml", "./data.toml", "./gpu.toml"] and m.status == "current"


def test_a_child_removes_inherited_rules_by_the_registry_label(fragments: Path) -> None:
    leaf = _write(fragments, "leaf", 'extends = "./stack.toml"\nremove = ["probes:llama31-rope", "gpu.cuda", '
                                     '"model_features:rope_scaling.rope_type=llama3->transformers>=4.43.0"]\n'
                                     '[[probes]]\nname = "tiny-qlora"\ntier = 3\nparams = { family = "qwen2" }\n')
    m = load_matrix(str(leaf))
    assert [p.name for p in m.probes] == ["imports", "tiny-qlora"]
    assert m.gpu.cuda is None and m.model_features == ()
    assert m.remove == ("probes:llama31-rope", "gpu.cuda",
                        "model_features:rope_scaling.rope_type=llama3->transformers>=4.43.0")


def test_every_bad_removal_is_reported_with_a_hint(fragments: Path) -> None:
    leaf = _write(fragments, "leaf", 'extends = "./stack.toml"\nremove = ["probes:llama31-rop", "probe:imports", '
                                     '"gpu.bf16", "gpu.cuda:x"]\n')
    with pytest.raises(MatrixError) as e:
        load_matrix(str(leaf))
    text = "\n".join(e.value.problems)
    assert len(e.value.problems) == 4
    assert "did you mean probes:llama31-rope?" in text and "did you mean 'probes'?" in text
    assert "remove 'gpu.bf16'" in text and "remove 'gpu.cuda:x'" in text


def test_a_cycle_through_a_list_is_caught(tmp_path: Path) -> None:
    _write(tmp_path, "a", 'extends = ["./b.toml"]\n')
    _write(tmp_path, "b", 'extends = ["./c.toml", "./a.toml"]\n')
    _write(tmp_path, "c", "")
    with pytest.raises(MatrixError, match="cyclic 'extends'"):
        load_matrix(str(tmp_path / "a.toml"))


def test_extends_must_be_references(tmp_path: Path) -> None:
    _write(tmp_path, "a", "extends = [1]\n")
    with pytest.raises(MatrixError, match="'extends' must be a matrix reference or a list of them"):
        load_matrix(str(tmp_path / "a.toml"))


def test_model_types_and_remove_are_the_files_own(fragments: Path) -> None:
    _write(fragments, "mid", 'extends = "./stack.toml"\nmodel_types = ["qwen2"]\nremove = ["gpu.cuda"]\n')
    leaf = _write(fragments, "leaf", 'extends = "./mid.toml"\n')
    m = load_matrix(str(leaf))
    assert m.model_types == () and m.remove == () and m.gpu.cuda is None


def test_check_model_picks_a_family_by_model_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envdoctor._matrix.loader import matrix_for_model

    folder = tmp_path / "mine" / "myqwen"
    folder.mkdir(parents=True)
    (folder / "2026.12.toml").write_text('schema_version = 1\nname = "myqwen"\nversion = "2026.12"\n'
                                         'model_types = ["qwen2", "my_custom_type"]\n', encoding="utf-8")
    monkeypatch.setenv("ENVDOCTOR_MATRIX_PATH", str(tmp_path / "mine"))
    assert matrix_for_model(["qwen2"]) == "qwen"  # the bundled family claims it first
    assert matrix_for_model(["my_custom_type"]) == "myqwen"
    assert matrix_for_model(["gemma3", "qwen2"]) == "gemma"  # the config's own type before its nested ones
    assert matrix_for_model(["deepseek_v3"]) is None


def test_the_warm_path_reads_a_parent_without_extends_unparsed_but_sees_its_change(fragments: Path) -> None:
    leaf = _write(fragments, "leaf", 'extends = ["./stack.toml", "./data.toml"]\n')
    assert [p.name for p in load_matrix(str(leaf)).packages] == ["torch", "datasets"]
    data = fragments / "data.toml"  # no `extends` line: the warm path hashes its bytes without parsing it
    data.write_text(data.read_text(encoding="utf-8").replace('"datasets"', '"peft"'), encoding="utf-8")
    assert [p.name for p in load_matrix(str(leaf)).packages] == ["torch", "peft"]
