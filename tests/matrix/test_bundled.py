"""The bundled matrices: they load, every rule carries evidence, index hints are symbolic, and the default is clean here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envdoctor._matrix.checks import index_problem as check_index
from envdoctor._matrix.loader import DEFAULT_MATRIX, available, load_matrix
from envdoctor._matrix.trust import rules_without_evidence
from envdoctor._paths import bundled_matrix_dir

BUNDLED = [e for e in available() if e.bundled]
MINE = ["llama31@2024.06", "llama31@2024.12", "llama31@2026.11", "colab-axolotl@2024.06", "galore-trl086@2025.12",
        "qwen@2026.11", "gemma@2026.11", "mistral@2026.11", "phi@2026.11"]
FAMILIES = {"llama31": "llama", "qwen": "qwen2", "gemma": "gemma3", "mistral": "mistral", "phi": "phi3"}
# Hosts an evidence URL may name: public pages anyone can read (never a package index: those stay symbolic).
EVIDENCE_HOSTS = {"github.com", "huggingface.co", "docs.nvidia.com", "pytorch.org"}


def test_the_bundled_matrices_are_all_there() -> None:
    refs = {e.ref for e in BUNDLED}
    assert set(MINE) <= refs
    assert load_matrix(DEFAULT_MATRIX).ref == "llama31@2026.11"


@pytest.mark.parametrize("ref", [e.ref for e in BUNDLED])
def test_every_bundled_rule_has_evidence(ref: str) -> None:
    matrix = load_matrix(ref, use_cache=False)
    assert rules_without_evidence(matrix) == [], f"{ref}: rules without evidence"


@pytest.mark.parametrize("ref", MINE)
def test_every_matrix_extends_drift(ref: str) -> None:
    assert any(c.startswith("drift@") for c in load_matrix(ref).chain)


@pytest.mark.parametrize("ref", [e.ref for e in BUNDLED if e.name != "drift"])
def test_history_matrices_pin_what_they_extend(ref: str) -> None:
    """A history (or broken) matrix never changes meaning when drift grows: each of its parents is name@version."""
    m = load_matrix(ref)
    if m.status in ("history", "broken"):
        parents = [m.extends] if isinstance(m.extends, str) else list(m.extends or ())
        assert parents and all("@" in p for p in parents), f"{ref}: extends {m.extends!r}"


@pytest.mark.parametrize(("name", "family"), FAMILIES.items())
def test_family_matrices_share_one_base_and_build_their_own_tiny_model(name: str, family: str) -> None:
    m = load_matrix(name)
    assert "hf-stack@2026.11" in m.chain and "cuda-qlora@2026.11" in m.chain and m.model_types
    [tiny] = [p for p in m.probes if p.name == "tiny-qlora"]
    assert tiny.params == {"family": family}
    assert ("llama31-rope" in {p.name for p in m.probes}) is (name == "llama31")
    path = Path(m.source)
    assert len(path.read_text(encoding="utf-8").splitlines()) < 60, "a family matrix is a small file on the base"


def test_a_rule_without_evidence_is_caught(write_matrix) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix(
        '[[packages]]\nname = "torch"\nreason = "because"\n\n'
        '[[known_bad]]\nname = "tokenizers"\nspecifier = "==0.21.0"\nreason = "r"\nevidence = ["METADATA L31"]\n\n'
        '[gpu.bf16]\nreason = "no evidence here"\n'
    )
    assert rules_without_evidence(load_matrix(path)) == ["packages[torch]", "gpu.bf16"]


@pytest.mark.parametrize("ref", MINE)
def test_index_hints_are_symbolic_and_well_formed(ref: str) -> None:
    m = load_matrix(ref)
    hints = [p.index_url for p in m.packages if p.index_url] + [g.index_url for g in m.install_groups if g.index_url]
    for hint in hints:
        assert hint.startswith("pytorch:"), hint
        assert check_index(hint) is None


def test_index_hint_form_is_checked() -> None:
    assert check_index("pytorch:cu118") is None
    assert check_index("pytorch:rocm6.2") is None
    assert "neither" in (check_index("cu118") or "")
    assert check_index("pytorch:cuda-eleven") is not None


def test_no_registry_host_is_written_into_a_matrix() -> None:
    """A bundled matrix names no package index (indexes are symbolic): its URLs are VCS sources on github.com and
    evidence pages anyone can read."""
    for path in Path(bundled_matrix_dir()).glob("*/*.toml"):
        for host in re.findall(r"https?://([^/\s\"']+)", path.read_text(encoding="utf-8")):
            assert host in EVIDENCE_HOSTS, f"{path}: {host}"


def test_seed_corrections_are_recorded() -> None:
    old = load_matrix("llama31@2024.06")
    assert old.status == "broken" and "rope_scaling" in (old.status_reason or "")
    dec = load_matrix("llama31@2024.12")
    assert str(dec.package("tokenizers").specifier) == "==0.20.3"  # type: ignore[union-attr]
    bad = [b for b in dec.known_bad if b.name == "tokenizers"]
    assert bad and str(bad[0].specifier) == "==0.21.0" and str(bad[0].with_) == "transformers==4.46.3"
    colab = load_matrix("colab-axolotl")
    axolotl = colab.package("axolotl")
    assert axolotl is not None and axolotl.no_deps and axolotl.source and "not on the package index" in axolotl.reason.lower()
    assert [g.name for g, _ in colab.groups_in_order()][0] == "torch"
    assert colab.package("torch").local == "cu118"  # type: ignore[union-attr]
    assert {a.name for a in colab.absent} >= {"torchvision", "torchaudio", "tensorflow", "opencv-python"}
    galore = load_matrix("galore-trl086")
    assert str(galore.package("trl").specifier) == "==0.8.6"  # type: ignore[union-attr]
    assert str(galore.package("transformers").specifier) == "<5,>=4.41.0"  # type: ignore[union-attr]
    assert galore.package("rich") is not None  # trl 0.8.6 imports it without declaring it
    assert galore.gpu.mps is not None and not galore.gpu.mps.supported
    names = {p.name for p in galore.probes}
    assert {"tiny-galore", "training-args"} <= names


@pytest.mark.parametrize("ref", ["llama31@2024.06", "llama31@2024.12", "llama31@2026.11"])
def test_llama_matrices_carry_the_model_features(ref: str) -> None:
    feats = {(f.key.split("|")[0], f.equals, f.contains): str(f.requires) for f in load_matrix(ref).model_features}
    assert feats[("rope_scaling.rope_type", "llama3", None)] == "transformers>=4.43.0"
    assert feats[("architectures", None, "MllamaForConditionalGeneration")] == "transformers>=4.45.0"


@pytest.mark.parametrize("ref", MINE)
def test_probe_names_and_tiers(ref: str) -> None:
    tiers = {p.name: p.tier for p in load_matrix(ref).probes}
    assert tiers["imports"] == 1 and tiers["tiny-qlora"] == 3
    assert all(tiers[n] == 2 for n in ("cuda-available", "cuda-arch", "bf16-matmul", "bnb-nf4-matmul", "bnb-8bit-optim",
                                        "training-args"))


def test_default_matrix_is_clean_here_apart_from_the_gpu() -> None:
    """This interpreter carries today's stack (transformers 5, trl 1, torch >=2.6): only the missing CUDA GPU fails."""
    from envdoctor._check import check
    from envdoctor._env.environment import inspect_environment
    from envdoctor._env.gpu import declared

    report = check(DEFAULT_MATRIX, environment=inspect_environment(gpu=declared("none")))
    failing = [(f.subject, f.message) for f in report.findings if f.status.name == "FAIL"]
    assert failing == [("cuda", "bitsandbytes needs a CUDA GPU; found no GPU (no GPU declared)")]
