"""tools/api_drift.py diffs two releases read from their wheels with `ast` (tiny synthetic wheels; no network)."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("api_drift", ROOT / "tools" / "api_drift.py")
assert _spec is not None and _spec.loader is not None
ad = importlib.util.module_from_spec(_spec)
sys.modules["api_drift"] = ad
_spec.loader.exec_module(ad)

TRAINER_1 = '''raise SystemExit("read, never imported")
from .deprecation import deprecate_kwarg


class DPOTrainer(Trainer):
    def __init__(self, model=None, args=None, tokenizer=None, beta: float = 0.1, max_length=None):
        pass
'''
TRAINER_2 = '''raise SystemExit("read, never imported")


class DPOTrainer(Trainer):
    @deprecate_kwarg("tokenizer", new_name="processing_class", version="0.3.0")
    def __init__(self, model=None, args=None, processing_class=None):
        pass
'''
CONFIG_1 = '''from dataclasses import dataclass


@dataclass
class DPOConfig(TrainingArguments):
    beta: float = 0.1
    max_target_length: int = 128
'''
CONFIG_2 = '''from dataclasses import dataclass


@dataclass
class BaseConfig:
    seed: int = 42


@dataclass
class DPOConfig(BaseConfig):
    beta: float = 0.1
    max_completion_length: int = 128
'''
LOADER = '''def from_pretrained(cls, path, *args, **kwargs):
    use_auth_token = kwargs.pop("{old}", None)
    return cls(path)
'''


def _wheel(folder: Path, version: str, files: dict[str, str]) -> Path:
    path = folder / f"fakepkg-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"fakepkg-{version}.dist-info/METADATA", f"Name: fakepkg\nVersion: {version}\n")
    return path


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    _wheel(folder, "0.1.0", {"fakepkg/trainer/dpo_trainer.py": TRAINER_1, "fakepkg/trainer/dpo_config.py": CONFIG_1,
                             "fakepkg/modeling.py": LOADER.format(old="use_auth_token")})
    _wheel(folder, "0.2.0", {"fakepkg/trainer/dpo_trainer.py": TRAINER_2, "fakepkg/trainer/dpo_config.py": CONFIG_2,
                             "fakepkg/experimental/dpo_trainer.py": "class DPOTrainer:\n    pass\n",
                             "fakepkg/modeling.py": LOADER.format(old="token")})
    return folder


TARGETS = [("trl.DPOTrainer", "DPOTrainer"), ("trl.DPOConfig", "DPOConfig"),
           ("fakepkg.from_pretrained", "from_pretrained")]


def _releases(wheels: Path) -> list[object]:
    return [ad.Release("fakepkg", Version(v), ad.find_wheel("fakepkg", v, [wheels])) for v in ("0.1.0", "0.2.0")]


def test_surfaces_are_read_from_the_zip_never_imported(wheels: Path) -> None:
    old, new = _releases(wheels)
    trainer = ad.surface(old, "DPOTrainer")
    assert trainer is not None and trainer.params == {"model", "args", "tokenizer", "beta", "max_length"}
    shimmed = ad.surface(new, "DPOTrainer")  # the non-experimental definition wins
    assert shimmed is not None and shimmed.path == "fakepkg/trainer/dpo_trainer.py"
    assert shimmed.shims == {"tokenizer"} and shimmed.renamed == (("tokenizer", "processing_class"),)
    config = ad.surface(new, "DPOConfig")  # dataclass fields, with a base found in the same wheel
    assert config is not None and config.params == {"beta", "max_completion_length", "seed"}
    loader = ad.surface(old, "from_pretrained")  # kwargs.pop("name") counts as a keyword
    assert loader is not None and "use_auth_token" in loader.params and loader.var_kw
    assert ad.surface(new, "NoSuchClass") is None


def test_diff_lists_removed_renamed_and_moved_keywords_with_the_release(wheels: Path) -> None:
    changes = ad.diff("fakepkg", _releases(wheels), {("trl.DPOTrainer", "tokenizer")}, TARGETS)
    lines = [c.line() for c in changes]
    assert lines == [
        "fakepkg 0.1.0 -> 0.2.0 trl.DPOTrainer: renamed tokenizer -> processing_class (deprecation shim) [rule]",
        "fakepkg 0.1.0 -> 0.2.0 trl.DPOTrainer: moved beta (now in trl.DPOConfig) [no rule]",
        "fakepkg 0.1.0 -> 0.2.0 trl.DPOTrainer: removed max_length [no rule]",
        "fakepkg 0.1.0 -> 0.2.0 trl.DPOConfig: renamed? max_target_length -> max_completion_length [no rule]",
        "fakepkg 0.1.0 -> 0.2.0 fakepkg.from_pretrained: removed use_auth_token (still swallowed by **kwargs) "
        "[no rule]",
    ]


def test_offline_run_names_a_missing_wheel(wheels: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no wheel of fakepkg==0\.3\.0"):
        ad.fetch("fakepkg", "0.3.0", tmp_path / "cache", [wheels], offline=True)
    assert ad.fetch("fakepkg", "0.2.0", tmp_path / "cache", [wheels], offline=True).name.startswith("fakepkg-0.2.0")
    with pytest.raises(SystemExit, match="PACKAGE=V1,V2"):
        ad.main(["--releases", "trl", "--offline", "--cache", str(tmp_path)])
