"""tools/model_support.py reads every literal form of CONFIG_MAPPING_NAMES the releases use, without importing them."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("model_support", ROOT / "tools" / "model_support.py")
assert _spec is not None and _spec.loader is not None
ms = importlib.util.module_from_spec(_spec)
sys.modules["model_support"] = ms
_spec.loader.exec_module(ms)

V4 = '''from collections import OrderedDict
CONFIG_MAPPING_NAMES = OrderedDict(
    [
        # Add configs here
        ("llama", "LlamaConfig"),
        ("qwen2", "Qwen2Config"),
    ]
)
raise SystemExit("a wheel's source is read, never run")
'''
V5_GENERATED = '''CONFIG_MAPPING_NAMES = OrderedDict[str, str](
    [
        ("qwen3", "Qwen3Config"),
    ]
)
'''
V5_CONFIG = '''from .auto_mappings import CONFIG_MAPPING_NAMES
CONFIG_MAPPING_NAMES.update(
    {
        "mimi_decoder": "MimiDecoderConfig",
    }
)
CONFIG_MAPPING_NAMES = OrderedDict(**{"gpt-sw3": "GPT2Config"}, **CONFIG_MAPPING_NAMES)
'''


def test_every_literal_form_is_read_with_its_line() -> None:
    got = {e.model_type: (e.config_class, e.line) for e in ms.mapping_entries(V4, "a.py")}
    assert got == {"llama": ("LlamaConfig", 5), "qwen2": ("Qwen2Config", 6)}
    assert [e.model_type for e in ms.mapping_entries(V5_GENERATED, "b.py")] == ["qwen3"]
    assert sorted(e.model_type for e in ms.mapping_entries(V5_CONFIG, "c.py")) == ["gpt-sw3", "mimi_decoder"]


def _wheel(tmp: Path, version: str, files: dict[str, str]) -> Path:
    path = tmp / f"transformers-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def test_floors_are_exact_only_when_no_release_between_was_left_unread(tmp_path: Path) -> None:
    cfg = "transformers/models/auto/configuration_auto.py"
    gen = "transformers/models/auto/auto_mappings.py"
    read = {
        Version("4.36.0"): ms.read_wheel(_wheel(tmp_path, "4.36.0", {cfg: V4.replace('("qwen2", "Qwen2Config"),', "")})),
        Version("4.37.0"): ms.read_wheel(_wheel(tmp_path, "4.37.0", {cfg: V4})),
        Version("5.0.0"): ms.read_wheel(_wheel(tmp_path, "5.0.0", {gen: V5_GENERATED.replace(
            '("qwen3", "Qwen3Config"),', '("qwen3", "Qwen3Config"), ("qwen2", "Qwen2Config"), ("llama", "LlamaConfig"),')})),
    }
    wheels = {v: f"transformers-{v}-py3-none-any.whl" for v in read}
    candidates = [Version(v) for v in ("4.36.0", "4.37.0", "4.38.0", "5.0.0")]
    assert ms.unpinned(read, candidates) == [Version("4.38.0")]  # qwen3 falls between 4.37.0 and 5.0.0
    table = ms.floors(read, wheels, candidates)
    assert table["qwen2"]["first"] == "4.37.0" and table["qwen2"]["exact"] is True
    assert table["qwen2"]["evidence"] == f"transformers==4.37.0:{cfg}:L6"
    assert table["qwen3"]["exact"] is False and table["qwen3"]["absent_in"] == "4.37.0"
    assert table["llama"]["exact"] is False and "oldest release read" in str(table["llama"]["note"])


def test_the_shipped_table_covers_the_families_users_train() -> None:
    data = json.loads((ROOT / "src" / "envdoctor" / "data" / "model_types.json").read_text(encoding="utf-8"))
    types = data["model_types"]
    for name in ("llama", "qwen2", "qwen3", "gemma2", "gemma3", "mistral", "phi3", "llama4", "gpt_oss"):
        assert name in types
        assert types[name]["evidence"].startswith(f"transformers=={types[name]['first']}:transformers/models/auto/")
    assert all(Version(v) not in {Version(y) for y in data["yanked"]} for v in (r["first"] for r in types.values()))
