"""`check --model`: real-shaped config.json files of popular models against transformers just below and at the floor.

The configs are trimmed copies of what the Hub publishes (the keys envdoctor reads, plus a few it must ignore);
the floors are those of data/model_types.json, written down here by hand so that a regenerated table that
moves one of them fails a test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from envdoctor._check import check_environment, load_model_config, matrix_for_config
from envdoctor._check.findings import Finding, Kind, Status
from envdoctor._check.model import floors
from envdoctor._cli import main
from envdoctor._matrix.loader import load_matrix
from envdoctor.errors import InspectionError
from envdoctor.testing import fake_environment, fake_gpu, make_dist

LLAMA3_ROPE = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192, "rope_type": "llama3"}


def _cfg(model_type: str, arch: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"architectures": [arch], "model_type": model_type, "hidden_size": 4096,
                            "num_hidden_layers": 32, "torch_dtype": "bfloat16", "transformers_version": "4.51.0"}
    base.update(extra)
    return base


# id -> (config.json, the transformers floor of everything it uses, the release just below it, its family matrix)
MODELS: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "Llama-3.1-8B": (_cfg("llama", "LlamaForCausalLM", rope_scaling=LLAMA3_ROPE, vocab_size=128256),
                     "4.43.0", "4.42.4", "llama31"),
    "Llama-3.2-1B": (_cfg("llama", "LlamaForCausalLM", rope_scaling={**LLAMA3_ROPE, "factor": 32.0},
                          tie_word_embeddings=True), "4.43.0", "4.42.4", "llama31"),
    "Qwen2.5-7B-Instruct": (_cfg("qwen2", "Qwen2ForCausalLM", rope_scaling=None, sliding_window=131072,
                                 use_sliding_window=False), "4.37.0", "4.36.2", "qwen"),
    "Qwen3-8B": (_cfg("qwen3", "Qwen3ForCausalLM", head_dim=128, rope_scaling=None), "4.51.0", "4.50.3", "qwen"),
    "Qwen3-30B-A3B": (_cfg("qwen3_moe", "Qwen3MoeForCausalLM", num_experts=128, num_experts_per_tok=8),
                      "4.51.0", "4.50.3", "qwen"),
    "gemma-2-9b": (_cfg("gemma2", "Gemma2ForCausalLM", attn_logit_softcapping=50.0, query_pre_attn_scalar=256),
                   "4.42.0", "4.41.2", "gemma"),
    "gemma-3-4b-it": ({"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                       "text_config": {"model_type": "gemma3_text", "hidden_size": 2560,
                                       "rope_scaling": {"factor": 8.0, "rope_type": "linear"}},
                       "vision_config": {"model_type": "siglip_vision_model", "image_size": 896},
                       "torch_dtype": "bfloat16"}, "4.50.0", "4.49.0", "gemma"),
    "gemma-3n-E4B-it": ({"architectures": ["Gemma3nForConditionalGeneration"], "model_type": "gemma3n",
                         "text_config": {"model_type": "gemma3n_text"},
                         "vision_config": {"model_type": "gemma3n_vision", "architecture": "mobilenetv5_300m_enc"},
                         "audio_config": {"model_type": "gemma3n_audio"}, "torch_dtype": "bfloat16"},
                        "4.53.0", "4.52.4", "gemma"),
    "Mistral-7B-v0.3": (_cfg("mistral", "MistralForCausalLM", sliding_window=None, vocab_size=32768),
                        "4.36.0", "4.35.2", "mistral"),
    "Mistral-Small-3.1-24B": ({"architectures": ["Mistral3ForConditionalGeneration"], "model_type": "mistral3",
                               "text_config": {"model_type": "mistral", "hidden_size": 5120},
                               "vision_config": {"model_type": "pixtral", "image_size": 1540},
                               "torch_dtype": "bfloat16"}, "4.50.0", "4.49.0", "mistral"),
    "Phi-3-mini-4k": (_cfg("phi3", "Phi3ForCausalLM", rope_scaling=None, sliding_window=2047), "4.41.0", "4.40.2",
                      "phi"),
    "Phi-3.5-mini": (_cfg("phi3", "Phi3ForCausalLM", rope_scaling={"type": "longrope", "long_factor": [1.08],
                                                                   "short_factor": [1.0]}), "4.43.0", "4.42.4", "phi"),
    "phi-4": (_cfg("phi3", "Phi3ForCausalLM", rope_scaling=None, vocab_size=100352), "4.41.0", "4.40.2", "phi"),
    "Llama-4-Scout-17B-16E": ({"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
                               "text_config": {"model_type": "llama4_text", "num_local_experts": 16,
                                               "rope_scaling": {"factor": 8.0, "rope_type": "llama3",
                                                                "original_max_position_embeddings": 8192}},
                               "vision_config": {"model_type": "llama4_vision_model"}, "torch_dtype": "bfloat16"},
                              "4.51.0", "4.50.3", "llama31"),
    "DeepSeek-V3": (_cfg("deepseek_v3", "DeepseekV3ForCausalLM", n_routed_experts=256,
                         quantization_config={"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                              "weight_block_size": [128, 128]},
                         rope_scaling={"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096}),
                    "4.51.0", "4.50.3", "llama31"),
    "gpt-oss-20b": (_cfg("gpt_oss", "GptOssForCausalLM", quantization_config={
        "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"], "quant_method": "mxfp4"},
        rope_scaling={"rope_type": "yarn", "factor": 32.0, "original_max_position_embeddings": 4096}),
        "4.55.0", "4.54.1", "llama31"),
    "SmolLM3-3B": (_cfg("smollm3", "SmolLM3ForCausalLM", no_rope_layer_interval=4), "4.53.0", "4.52.4", "llama31"),
    "OLMo-2-1124-7B": (_cfg("olmo2", "Olmo2ForCausalLM"), "4.47.0", "4.46.3", "llama31"),
    "granite-3.1-8b": (_cfg("granite", "GraniteForCausalLM", attention_multiplier=0.0078125), "4.45.0", "4.44.2",
                       "llama31"),
    "Qwen2.5-VL-7B": ({"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
                       "vision_config": {"model_type": "qwen2_5_vl", "depth": 32},
                       "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "torch_dtype": "bfloat16"},
                      "4.49.0", "4.48.3", "llama31"),
}


def _floor_findings(findings: tuple[Finding, ...] | list[Finding]) -> list[Finding]:
    """The findings that are about the transformers release (the model types' floors and transformers features)."""
    return [f for f in findings if f.kind is Kind.MODEL and f.subject == "transformers"]


def _report(tmp_path: Path, config: dict[str, Any], transformers: str, family: str, **env: Any):  # type: ignore[no-untyped-def]
    site = tmp_path / f"site-{transformers}"
    make_dist(site, "transformers", transformers)
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return check_environment(load_matrix(family), fake_environment(site, **env), load_model_config(tmp_path))


def test_twenty_popular_models() -> None:
    assert len(MODELS) == 20


@pytest.mark.parametrize(("config", "floor", "below", "family"),
                         [pytest.param(*v, id=k) for k, v in MODELS.items()])
def test_the_floor_on_both_sides(tmp_path: Path, config: dict[str, Any], floor: str, below: str, family: str) -> None:
    assert matrix_for_config(config) == family
    at = _floor_findings(_report(tmp_path, config, floor, family).findings)
    assert at and all(f.status is Status.OK for f in at), [f.message for f in at]
    under = _floor_findings(_report(tmp_path, config, below, family).findings)
    failing = [f for f in under if f.status is not Status.OK]
    assert failing and all(f.fix == f"pip install 'transformers>={floor}'" for f in failing), [f.message for f in under]
    exact = floors()["model_types"][config["model_type"]].get("exact")
    # a floor at the oldest release read (4.36.0) is a lower bound only: below it is a warning, not a failure
    assert any(f.status is (Status.FAIL if exact or floor != "4.36.0" else Status.WARN) for f in failing)


def test_the_message_names_the_type_the_architecture_and_the_wheel_line(tmp_path: Path) -> None:
    config, _, below, family = MODELS["Qwen3-8B"]
    [f] = [f for f in _floor_findings(_report(tmp_path, config, below, family).findings) if "'qwen3'" in f.message]
    assert f.status is Status.FAIL and "Qwen3ForCausalLM" in f.message and "KeyError: 'qwen3'" in f.message
    assert f.evidence == ("transformers==4.51.0:transformers/models/auto/configuration_auto.py:L259",)
    assert "4.50.3 does not have it" in f.reason


def test_nested_types_are_checked_and_a_later_registration_is_not_a_floor(tmp_path: Path) -> None:
    config, floor, _, family = MODELS["gemma-3-4b-it"]
    names = [f.message for f in _floor_findings(_report(tmp_path, config, floor, family).findings)]
    assert any("'gemma3_text' (text_config.model_type)" in m for m in names)
    assert any("'siglip_vision_model' (vision_config.model_type)" in m for m in names)
    config, floor, _, family = MODELS["Llama-4-Scout-17B-16E"]
    report = _report(tmp_path, config, floor, family)
    # llama4_vision_model is registered only in 5.6.0, but Llama4Config builds it from 4.51.0
    assert not any("llama4_vision_model" in f.message for f in report.findings)


def test_features_with_packages_of_their_own(tmp_path: Path) -> None:
    config, floor, _, family = MODELS["gemma-3n-E4B-it"]
    [timm] = [f for f in _report(tmp_path, config, floor, family).findings if f.subject == "timm"]
    assert timm.status is Status.FAIL and timm.fix == "pip install 'timm'"
    config, floor, _, family = MODELS["gpt-oss-20b"]
    by = {f.subject: f.status for f in _report(tmp_path, config, floor, family).findings if f.kind is Kind.MODEL}
    assert by["kernels"] is Status.WARN  # optional: without it MXFP4 is dequantized, slower and bigger
    config, floor, _, family = MODELS["DeepSeek-V3"]
    by = {f.subject: f.status for f in _report(tmp_path, config, floor, family).findings if f.kind is Kind.MODEL}
    assert by["accelerate"] is Status.FAIL


def test_quantization_and_attention_packages(tmp_path: Path) -> None:
    config = _cfg("qwen2", "Qwen2ForCausalLM", attn_implementation="flash_attention_2",
                  quantization_config={"quant_method": "awq", "bits": 4})
    site = tmp_path / "site"
    make_dist(site, "transformers", "5.24.0")
    make_dist(site, "flash-attn", "2.3.2")
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    report = check_environment(load_matrix("qwen"), fake_environment(site), load_model_config(tmp_path))
    by = {f.subject: f for f in report.findings if f.kind is Kind.MODEL}
    assert by["flash-attn"].status is Status.FAIL and by["flash-attn"].found == "2.3.2"
    assert by["gptqmodel"].status is Status.FAIL and "AWQ" in by["gptqmodel"].message
    make_dist(tmp_path / "site2", "flash-attn", "2.8.3")
    make_dist(tmp_path / "site2", "gptqmodel", "5.0.0")
    report = check_environment(load_matrix("qwen"), fake_environment(tmp_path / "site2", site),
                               load_model_config(tmp_path))
    by = {f.subject: f for f in report.findings if f.kind is Kind.MODEL}
    assert by["flash-attn"].status is Status.OK and by["gptqmodel"].status is Status.OK


def test_bf16_weights_on_a_gpu_without_bf16(tmp_path: Path) -> None:
    config, floor, _, family = MODELS["Qwen3-8B"]
    [t4] = [f for f in _report(tmp_path, config, floor, family, gpu=fake_gpu("t4")).findings if f.subject == "bf16"
            and f.kind is Kind.MODEL]
    assert t4.status is Status.WARN and "load and train in fp16" in t4.message
    [a100] = [f for f in _report(tmp_path, config, floor, family, gpu=fake_gpu("a100-80gb")).findings
              if f.subject == "bf16" and f.kind is Kind.MODEL]
    assert a100.status is Status.OK
    assert not [f for f in _report(tmp_path, config, floor, family).findings if f.subject == "bf16"]  # no GPU: silent


def test_an_unknown_type_is_a_warning_naming_the_releases_read(tmp_path: Path) -> None:
    report = _report(tmp_path, _cfg("internvl_chat", "InternVLChatModel", auto_map={"AutoConfig": "x.Y"}), "5.24.0",
                     "llama31")
    [f] = [f for f in _floor_findings(report.findings)]
    read = floors()["releases_read"]
    assert f.status is Status.WARN and f"{len(read)} releases {read[0]} .. {read[-1]}" in f.message


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("{not json", "is not valid JSON", id="not-json"),
    pytest.param('["a list"]', "is not a JSON object", id="not-an-object"),
    pytest.param('{"architectures": ["LlamaForCausalLM"]}', "has no 'model_type'", id="no-model-type"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                           message: str) -> None:
    (tmp_path / "config.json").write_text(text, encoding="utf-8")
    with pytest.raises(InspectionError, match=message):
        load_model_config(tmp_path)
    assert main(["check", "--model", str(tmp_path / "config.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_without_matrix_the_model_picks_its_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(MODELS["gemma-2-9b"][0]), encoding="utf-8")
    main(["check", "--model", str(tmp_path), "--format", "json", "--gpu", "none"])
    data = json.loads(capsys.readouterr().out)
    assert data["matrix"] == "gemma@2026.11"
    assert data["model"] == {"model_types": ["gemma2"], "architectures": ["Gemma2ForCausalLM"]}
    assert any(f["kind"] == "model" and "'gemma2'" in f["message"] for f in data["findings"])


def test_a_floor_at_the_oldest_release_read_is_a_lower_bound(tmp_path: Path) -> None:
    config, _, below, family = MODELS["Mistral-7B-v0.3"]
    [f] = [f for f in _floor_findings(_report(tmp_path, config, below, family).findings)]
    assert f.status is Status.WARN and "the oldest release read" in f.message and "is not known" in f.message
