"""Issue 12: the tiny-model probes build the family's own model (Qwen2, Qwen3, Gemma3, Mistral, Phi3, Llama)."""

from __future__ import annotations

import json

import pytest

from envdoctor._certify import registry, validate_probe_params
from envdoctor._certify.probes.family import FAMILIES
from envdoctor._certify.registry import ProbeContext
from envdoctor._certify.runner import run_probe
from envdoctor._cli import main
from envdoctor._matrix.loader import load_matrix

ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
                 "gemma3": "Gemma3ForCausalLM", "mistral": "MistralForCausalLM", "phi3": "Phi3ForCausalLM"}


def test_the_family_table_names_the_real_architecture_classes() -> None:
    assert {f: s.model for f, s in FAMILIES.items()} == ARCHITECTURES
    assert FAMILIES["gemma3"].config == "Gemma3TextConfig" and FAMILIES["phi3"].lora_targets == ("qkv_proj", "o_proj")


@pytest.mark.parametrize(("params", "ok"), [
    pytest.param('{ family = "qwen2" }', True, id="qwen2"),
    pytest.param('{ family = "gemma3", steps = 3 }', True, id="gemma3-steps"),
    pytest.param('{ family = "gpt-neox" }', False, id="unknown-family"),
    pytest.param('{ family = "qwen2", steps = 1000 }', False, id="too-many-steps"),
    pytest.param('{ model = "transformers.AutoModel" }', False, id="no-model-names"),
])
def test_family_is_a_typed_param(write_matrix, params: str, ok: bool) -> None:  # type: ignore[no-untyped-def]
    m = load_matrix(str(write_matrix(f'[[probes]]\nname = "tiny-qlora"\ntier = 3\nparams = {params}\n')))
    assert (validate_probe_params(m) == []) is ok


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(ARCHITECTURES))
def test_tiny_qlora_trains_each_family_on_the_cpu(family: str) -> None:
    spec = registry.get("tiny-qlora")
    assert spec is not None
    ctx = ProbeContext(device="cpu", params={"family": family}, matrix={"name": "t", "packages": {}}, gpu={},
                       workdir="")
    res = run_probe(spec, 3, ctx)
    assert res.status == "pass", (res.reason, res.details.get("traceback"))
    assert res.details["architecture"] == ARCHITECTURES[family] and len(res.details["losses"]) == 2
    assert res.reason.startswith(f"{ARCHITECTURES[family]} LoRA in fp32 on CPU")


QWEN = """
[[packages]]
name = "transformers"
reason = "the model"

[[packages]]
name = "peft"
reason = "LoRA"

[[probes]]
name = "imports"
tier = 1
params = { modules = ["transformers", "peft"] }

[[probes]]
name = "family-forward"
tier = 2
params = { family = "qwen3" }

[[probes]]
name = "tiny-qlora"
tier = 3
params = { family = "qwen3" }
"""


@pytest.mark.slow
def test_certify_a_qwen_matrix_trains_a_tiny_qwen(write_matrix, capsys) -> None:  # type: ignore[no-untyped-def]
    path = str(write_matrix(QWEN, name="qwen-tiny"))
    code = main(["certify", "--matrix", path, "--tier", "3", "--device", "cpu", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    got = {p["name"]: p for p in data["probes"]}
    assert code == 0 and data["certified"], json.dumps(data, indent=1)
    assert got["family-forward"]["details"]["model_type"] == "qwen3"
    assert got["tiny-qlora"]["details"]["architecture"] == "Qwen3ForCausalLM"
