"""Matrix loading: references, extends, caching, and one clear line per mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from envdoctor._matrix.loader import load_matrix
from envdoctor.errors import MatrixError

PKG = '[[packages]]\nname = "{name}"\nspecifier = "{spec}"\nreason = "r"\nevidence = ["e"]\n'


def test_user_matrix_loads_with_packaging_objects(write_matrix) -> None:
    path = write_matrix(PKG.format(name="transformers", spec=">=4.43"))
    m = load_matrix(str(path))
    assert m.ref == "test@1.0"
    rule = m.package("Transformers")
    assert rule is not None and rule.specifier.contains("4.46.3") and not rule.specifier.contains("4.41.0")


def test_malformed_toml_names_file_line_and_column(write_matrix) -> None:
    path = write_matrix('[[packages]\nname = "x"\n')
    with pytest.raises(MatrixError) as e:
        load_matrix(str(path))
    assert str(path) in str(e.value) and "line 4" in str(e.value) and "column" in str(e.value)


def test_all_problems_reported_together_with_did_you_mean(write_matrix) -> None:
    body = (
        '[[packages]]\nname = "a"\nspecifer = ">=1"\nreason = "r"\n'
        '[[packages]]\nname = "b"\nspecifier = "=>2"\nreason = "r"\n'
        '[python]\nspecifier = ">=3.11"\n'
    )
    with pytest.raises(MatrixError) as e:
        load_matrix(str(write_matrix(body)))
    problems = e.value.problems
    assert len(problems) == 3, problems
    text = "\n".join(problems)
    assert "unknown key 'packages[0].specifer' (did you mean 'specifier'?)" in text
    assert "packages[1].specifier: invalid version specifier '=>2'" in text
    assert "missing required key 'python.reason'" in text


def test_unknown_name_lists_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mystack").mkdir()
    (tmp_path / "mystack" / "1.0.toml").write_text('schema_version = 1\nname = "mystack"\nversion = "1.0"\n')
    monkeypatch.setenv("ENVDOCTOR_MATRIX_PATH", str(tmp_path))
    with pytest.raises(MatrixError) as e:
        load_matrix("mystak")
    assert "did you mean 'mystack'" in str(e.value) and "available:" in str(e.value)
    with pytest.raises(MatrixError, match="has no version '9.9'; available: 1.0"):
        load_matrix("mystack@9.9")


def test_newest_version_is_default_and_name_at_version_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for v in ("2024.6", "2024.12", "2024.9"):
        (tmp_path / "s").mkdir(exist_ok=True)
        (tmp_path / "s" / f"{v}.toml").write_text(f'schema_version = 1\nname = "s"\nversion = "{v}"\n')
    monkeypatch.setenv("ENVDOCTOR_MATRIX_PATH", str(tmp_path))
    assert load_matrix("s").version == "2024.12"  # versions compare as versions, not strings
    assert load_matrix("s@2024.9").version == "2024.9"


def test_extends_merges_and_child_overrides(write_matrix) -> None:
    write_matrix(PKG.format(name="torch", spec=">=2.4") + PKG.format(name="trl", spec="<1"), name="base")
    child = write_matrix('extends = "./base-1.0.toml"\n' + PKG.format(name="trl", spec=">=1"), name="child")
    m = load_matrix(str(child))
    assert m.chain == ("base@1.0", "child@1.0")
    assert str(m.package("trl").specifier) == ">=1"  # type: ignore[union-attr]
    assert m.package("torch") is not None


def test_cyclic_extends_is_an_error(write_matrix) -> None:
    write_matrix('extends = "./b-1.0.toml"\n', name="a")
    b = write_matrix('extends = "./a-1.0.toml"\n', name="b")
    with pytest.raises(MatrixError, match="cyclic 'extends'"):
        load_matrix(str(b))


def test_missing_file_and_bad_group(write_matrix, tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="matrix file not found"):
        load_matrix(str(tmp_path / "nope.toml"))
    path = write_matrix('[[packages]]\nname = "a"\ngroup = "core"\nreason = "r"\n')
    with pytest.raises(MatrixError, match="unknown install group 'core'"):
        load_matrix(str(path))


def test_cache_hit_loads_without_pydantic(write_matrix) -> None:
    path = write_matrix(PKG.format(name="transformers", spec=">=4.43"))
    load_matrix(str(path))  # validates and fills the cache
    code = (
        "import sys; from envdoctor._matrix.loader import load_matrix; "
        f"m = load_matrix({str(path)!r}); print(m.ref, 'pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["test@1.0", "False"]


def test_changed_file_is_revalidated(write_matrix) -> None:
    path = write_matrix(PKG.format(name="a", spec=">=1"))
    load_matrix(str(path))
    path.write_text(path.read_text().replace(">=1", "=>1"))
    with pytest.raises(MatrixError, match="invalid version specifier"):
        load_matrix(str(path))
