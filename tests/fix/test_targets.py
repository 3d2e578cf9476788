"""Targets: a requirements file with line origins, a matrix with groups, removals and the symbolic torch index."""

from __future__ import annotations

from pathlib import Path

import pytest

from envdoctor._fix.targets import expand_index, from_matrix, from_requirements, load_target
from envdoctor._matrix.loader import load_matrix
from envdoctor.errors import MatrixError, UsageError


def test_requirements_file_keeps_line_origins(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# pins\nalpha==1.0\n\nbeta>=2 ; python_version >= '3'\n", encoding="utf-8")
    target = from_requirements(req)
    assert [p.name for p in target.packages] == ["alpha", "beta"]
    assert [p.origin for p in target.packages] == ["requirements.txt:2", "requirements.txt:4"]
    assert target.kind == "requirements"


@pytest.mark.parametrize("text, needle", [
    pytest.param(None, "no such requirements file", id="missing"),
    pytest.param("# only comments\n", "no requirements", id="empty"),
])
def test_bad_requirements_file_is_one_clear_error(tmp_path: Path, text: str | None, needle: str) -> None:
    req = tmp_path / "req.txt"
    if text is not None:
        req.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=needle):
        from_requirements(req)


def test_matrix_groups_order_no_deps_absent_and_torch_index(write_matrix, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVDOCTOR_PYTORCH_INDEX", "http://127.0.0.1:9/whl/{tag}")
    ref = write_matrix('''
[[install_groups]]
name = "late"
order = 2
[[install_groups]]
name = "torch"
order = 1
index_url = "pytorch:cu118"
[[packages]]
name = "beta"
specifier = "==1.0"
group = "late"
reason = "r"
[[packages]]
name = "alpha"
specifier = "==1.0"
group = "torch"
local = "cu118"
reason = "r"
[[packages]]
name = "gamma"
specifier = "==1.0"
group = "late"
no_deps = true
reason = "r"
[[absent]]
name = "delta"
reason = "it fights the pins"
[[protected]]
name = "epsilon"
reason = "the platform's own"
''')
    target = from_matrix(load_matrix(ref))
    groups = target.groups()
    assert [g for g, _ in groups] == ["torch", "late"]
    alpha = groups[0][1][0]
    assert alpha.index_url == "http://127.0.0.1:9/whl/cu118"
    assert alpha.requirement == "alpha==1.0+cu118"
    assert [p.no_deps for p in groups[1][1]] == [False, True]
    assert [r.name for r in target.removals] == ["delta"]
    assert target.protected == ("epsilon",)
    assert groups[1][1][0].origin == "testfix@1.0 [[packages]] beta (group late)"


def test_symbolic_index_needs_configuration(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ENVDOCTOR_PYTORCH_INDEX", raising=False)
    with pytest.raises(UsageError, match="ENVDOCTOR_PYTORCH_INDEX"):
        expand_index("pytorch:cu118", "m.toml")
    with pytest.raises(MatrixError, match="unknown symbolic index"):
        expand_index("conda:main", "m.toml")
    assert expand_index("file:///wheels", "m.toml") == "file:///wheels"


def test_symbolic_index_error_shows_the_form_and_where_the_tag_comes_from(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ENVDOCTOR_PYTORCH_INDEX", raising=False)
    with pytest.raises(UsageError) as got:
        expand_index("pytorch:cu118", "m.toml")
    text = str(got.value)
    assert "{tag}" in text and "'cu118'" in text and "after 'pytorch:'" in text and "\n" not in text


def test_a_frozen_cpu_matrix_needs_no_torch_index(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ENVDOCTOR_PYTORCH_INDEX", raising=False)
    assert expand_index("pytorch:cpu", "m.toml") is None  # the configured index serves the CPU build


def test_matrix_and_requirements_together_is_usage_error() -> None:
    with pytest.raises(UsageError, match="not both"):
        load_target("llama31", "req.txt")


def test_colab_axolotl_target_is_the_seeds_procedure(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVDOCTOR_PYTORCH_INDEX", "file:///nonexistent/torch-index/{tag}")
    target = from_matrix(load_matrix("colab-axolotl"))
    names = [g for g, _ in target.groups()]
    assert names[0] == "torch" and names.index("core") < names.index("axolotl")  # the seed's install order
    torch = next(p for p in target.packages if p.name == "torch")
    assert torch.requirement == "torch==2.4.0+cu118" and torch.index_url == "file:///nonexistent/torch-index/cu118"
    axolotl = next(p for p in target.packages if p.name == "axolotl")
    assert axolotl.no_deps and axolotl.requirement.startswith("axolotl @ git+")  # 0.4.0 is not on the index
    assert {"torchvision", "torchaudio", "tensorflow"} <= {r.name for r in target.removals}  # the cleanup


def test_colab_matrix_without_torch_index_is_one_line(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from envdoctor._cli import main

    monkeypatch.delenv("ENVDOCTOR_PYTORCH_INDEX", raising=False)
    assert main(["fix", "--matrix", "colab-axolotl", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "ENVDOCTOR_PYTORCH_INDEX" in err and "torch" in err and len(err.strip().splitlines()) == 1
