"""envdoctor explain: every symptom of the seeds and the common extras, with real message texts."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from envdoctor._cli import main
from envdoctor._drift.explain import explain
from envdoctor._env.environment import Distribution, Environment
from envdoctor._env.gpu import GPU_TARGETS, GpuInfo
from envdoctor._matrix.loader import load_matrix

DRIFT = load_matrix("drift", use_cache=False)


def make_env(versions: dict[str, str], gpu: GpuInfo | None = None) -> Environment:
    """A typed Environment with only the given distributions (no GPU unless given)."""
    dists = {canonicalize_name(n): Distribution(n, Version(v), v) for n, v in versions.items()}
    return Environment(executable=sys.executable, prefix="", python_version=Version("3.11.7"), markers={},
                       distributions=dists, gpu=gpu or GpuInfo(False, reason="none here"))


NEW = make_env({"transformers": "5.23.0", "trl": "1.16.0", "torch": "2.13.0", "bitsandbytes": "0.50.2"})
OLD = make_env({"transformers": "4.41.0", "trl": "0.8.6", "torch": "2.4.0", "bitsandbytes": "0.42.0"})

# Real texts: from the seeds (/work/shared/seeds), FACTS.md (run in venvs), or the libraries' own source.
TEXTS = [
    pytest.param("ValueError: `rope_scaling` must be a dictionary with two fields, `type` and `factor`, got "
                 "{'factor': 8.0, 'low_freq_factor': 1.0, 'high_freq_factor': 4.0, "
                 "'original_max_position_embeddings': 8192, 'rope_type': 'llama3'}", "rope-scaling-llama3",
                 id="rope-facts"),
    pytest.param("ValueError: rope_scaling must be a dictionary with two fields, type and factor",
                 "rope-scaling-llama3", id="rope-seed000"),
    pytest.param("ValueError: The formatting_func should return a list of processed strings...",
                 "formatting-func-batched", id="formatting-seed002"),
    pytest.param("ValueError: The `formatting_func` should return a list of processed strings since it can lead "
                 "to silent bugs.", "formatting-func-batched", id="formatting-trl-0.12.2-source"),
    pytest.param("NotImplementedError: The operator 'bitsandbytes::optimizer_update_8bit_blockwise' is not "
                 "currently implemented for the MPS device.", "bitsandbytes-mps", id="bnb-mps-seed002"),
    pytest.param("torch.OutOfMemoryError: CUDA out of memory", "cuda-oom", id="oom-seed002"),
    pytest.param("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                 "capacity of 14.75 GiB of which 1.06 GiB is free.", "cuda-oom", id="oom-torch"),
    pytest.param("401 Unauthorized - requires HuggingFace authentication", "hf-gated-401", id="401-seed000"),
    pytest.param("ERROR: Cannot install tokenizers==0.21.0 and transformers==4.46.3 because these package versions "
                 "have conflicting dependencies.\nThe conflict is caused by:\n    The user requested "
                 "tokenizers==0.21.0\n    transformers 4.46.3 depends on tokenizers<0.21 and >=0.20\n"
                 "ERROR: ResolutionImpossible: for help visit "
                 "https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts",
                 "resolution-impossible", id="resolution-impossible-pip"),
    pytest.param("WARNING: torch 2.4.0 is installed but torch 2.8.0 is requested", "torch-installed-vs-requested",
                 id="torch-mismatch-seed000"),
    pytest.param("ERROR: pip's dependency resolver does not currently take into account all the packages that are "
                 "installed. This behaviour is the source of the following dependency conflicts.\n"
                 "torchvision 0.23.0 requires torch==2.8.0, but you have torch 2.4.0 which is incompatible.",
                 "torch-required-by-other", id="torch-mismatch-pip"),
    pytest.param("Disabling PyTorch because PyTorch >= 2.6 is required but found 2.4.0", "torch-too-old-for-transformers",
                 id="torch-floor-transformers-import-utils"),
    pytest.param("RuntimeError: operator torchvision::nms does not exist", "torchvision-nms", id="nms"),
    pytest.param("RuntimeError:\n        CUDA Setup failed despite GPU being available. Please run the following "
                 "command to get more information:\n\n        python -m bitsandbytes", "bitsandbytes-cuda-setup",
                 id="bnb-cuda-setup"),
    pytest.param("RuntimeError: CUDA error: no kernel image is available for execution on the device\nCUDA kernel "
                 "errors might be asynchronously reported at some other API call", "no-kernel-image", id="no-kernel"),
    pytest.param("ImportError: cannot import name 'AutoModel' from 'transformers' "
                 "(/usr/local/lib/python3.12/dist-packages/transformers/__init__.py)",
                 "cannot-import-transformers-name", id="import-seed000"),
    pytest.param("TypeError: TrainingArguments.__init__() got an unexpected keyword argument 'evaluation_strategy'",
                 "trainingargs-evaluation-strategy", id="evaluation-strategy-seed002"),
    pytest.param("TypeError: SFTTrainer.__init__() got an unexpected keyword argument 'max_seq_length'",
                 "sfttrainer-max-seq-length", id="sfttrainer-seed002"),
    pytest.param("TypeError: Trainer.__init__() got an unexpected keyword argument 'tokenizer'", "trainer-tokenizer",
                 id="trainer-tokenizer"),
    pytest.param("TypeError: SFTConfig.__init__() got an unexpected keyword argument 'max_seq_length'",
                 "sftconfig-max-seq-length", id="sftconfig"),
    # issue 13: the texts of bitsandbytes 0.41.1/0.43.3, transformers 4.46.3, trl, and the dynamic loader
    pytest.param("UserWarning: The installed version of bitsandbytes was compiled without GPU support. 8-bit "
                 "optimizers, 8-bit multiplication, and GPU quantization are unavailable.", "bnb-no-gpu-build",
                 id="bnb-no-gpu-0.41.1-source"),
    pytest.param("CUDA SETUP: Required library version not found: libbitsandbytes_cuda118.so. Maybe you need to compile "
                 "it from source?\nCUDA SETUP: Defaulting to libbitsandbytes_cpu.so...", "bnb-cpu-library",
                 id="bnb-cpu-0.41.1-source"),
    pytest.param("WARNING: BNB_CUDA_VERSION=124 environment variable detected; loading libbitsandbytes_cuda124.so.",
                 "bnb-cuda-version-override", id="bnb-override-0.43.3-source"),
    pytest.param("ImportError: /usr/lib/python3.10/site-packages/flash_attn_2_cuda.cpython-310-x86_64-linux-gnu.so: "
                 "undefined symbol: _ZN3c104cuda9SetDeviceEi", "flash-attn-undefined-symbol", id="flash-undefined"),
    pytest.param("ValueError: You can't pass `load_in_4bit`or `load_in_8bit` as a kwarg when passing "
                 "`quantization_config` argument at the same time.", "load-in-kbit-with-quantization-config",
                 id="kbit-4.46.3-source"),
    pytest.param("ImportError: cannot import name 'prepare_model_for_int8_training' from 'peft' "
                 "(/usr/lib/python3.10/site-packages/peft/__init__.py)", "removed-import", id="import-peft"),
]


@pytest.mark.parametrize(("text", "symptom"), TEXTS)
def test_every_symptom_is_recognised(text: str, symptom: str) -> None:
    result = explain(text, matrix=DRIFT, environment=NEW)
    assert [d.id for d in result.diagnoses] == [symptom]
    d = result.diagnoses[0]
    assert d.cause and d.fix and "{" not in d.cause.replace("{'", "")


def test_every_symptom_of_the_matrix_has_a_text_here() -> None:
    tested = {p.values[1] for p in TEXTS} | {"unexpected-keyword", "mac-device-none", "hf-gated-401"}
    assert {s.id for s in DRIFT.symptoms} <= tested


def test_real_typeerrors_from_the_installed_libraries(tmp_path: Path) -> None:
    """Raise the seed's TypeErrors for real with transformers 5.23 / TRL 1.16 and explain the exceptions."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments
    from trl import SFTConfig, SFTTrainer

    LlamaForCausalLM(LlamaConfig(vocab_size=8, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                 num_attention_heads=1, num_key_value_heads=1)).save_pretrained(tmp_path)

    cases = [(lambda: TrainingArguments(output_dir="o", evaluation_strategy="no"), "trainingargs-evaluation-strategy",
              "TrainingArguments(evaluation_strategy=...) -> TrainingArguments(eval_strategy=...)"),
             (lambda: Trainer(model=None, tokenizer=None), "trainer-tokenizer",
              "Trainer(tokenizer=...) -> Trainer(processing_class=...)"),
             (lambda: SFTTrainer(model="m", max_seq_length=8), "sfttrainer-max-seq-length",
              "SFTTrainer(max_seq_length=...) -> SFTTrainer(..., args=SFTConfig(..., max_length=...))"),
             (lambda: SFTConfig(output_dir="o", max_seq_length=8), "sftconfig-max-seq-length",
              "SFTConfig(max_seq_length=...) -> SFTConfig(max_length=...)"),
             (lambda: TrainingArguments(output_dir="o", overwrite_output_dir=True), "unexpected-keyword",
              "delete overwrite_output_dir=..."),
             # from_pretrained passes what it does not know to the model: "LlamaForCausalLM.__init__() got ..."
             (lambda: AutoModelForCausalLM.from_pretrained(tmp_path, load_in_4bit=True), "unexpected-keyword",
              "LlamaForCausalLM.from_pretrained(load_in_4bit=...) -> LlamaForCausalLM.from_pretrained(..., "
              "quantization_config=BitsAndBytesConfig(..., load_in_4bit=...))"),
             (lambda: AutoModelForCausalLM.from_pretrained(tmp_path, use_auth_token="t"), "unexpected-keyword",
              "LlamaForCausalLM.from_pretrained(use_auth_token=...) -> LlamaForCausalLM.from_pretrained(token=...)")]
    for make, symptom, edit in cases:
        with pytest.raises(TypeError) as info:
            make()
        result = explain(info.value, matrix=DRIFT)  # inspects this environment for real
        assert [d.id for d in result.diagnoses] == [symptom], str(info.value)
        assert result.diagnoses[0].edit is not None and result.diagnoses[0].edit.startswith(edit)
        assert result.diagnoses[0].has_cause is True


def test_mac_device_error_real_torch_text() -> None:
    import torch

    with pytest.raises(TypeError) as info:
        torch.device(None)  # the text accelerate meets on a Mac with bitsandbytes (seed 002 issue 6)
    mps = make_env({"torch": "2.13.0"}, GPU_TARGETS["mps"])
    d = explain(info.value, matrix=DRIFT, environment=mps).diagnoses
    assert [x.id for x in d] == ["mac-device-none"] and d[0].has_cause is True
    assert explain(info.value, matrix=DRIFT, environment=NEW).diagnoses[0].has_cause is False


def test_gated_repo_401_real_huggingface_hub_error() -> None:
    from huggingface_hub.utils import _http, hf_raise_for_status

    httpx = _http.httpx2
    request = httpx.Request("GET", "https://hub.invalid/meta-llama/Llama-3.1-8B-Instruct/resolve/main/config.json")
    response = httpx.Response(401, request=request, headers={
        "X-Error-Code": "GatedRepo",
        "X-Error-Message": "Access to model meta-llama/Llama-3.1-8B-Instruct is restricted. You must have access "
                           "to it and be authenticated to access it. Please log in."})
    with pytest.raises(Exception) as info:
        hf_raise_for_status(response)
    assert [d.id for d in explain(info.value, matrix=DRIFT, environment=NEW).diagnoses] == ["hf-gated-401"]


@pytest.mark.parametrize(("env", "has"), [(OLD, True), (NEW, False)], ids=["transformers-4.41", "transformers-5.23"])
def test_whether_this_environment_has_the_cause(env: Environment, has: bool) -> None:
    d = explain("ValueError: rope_scaling must be a dictionary with two fields, type and factor", matrix=DRIFT,
                environment=env).diagnoses[0]
    assert d.has_cause is has
    assert ("4.41.0" if has else "5.23.0") in d.why


def test_generic_keyword_uses_rename_data_and_the_installed_version() -> None:
    text = "TypeError: TrainingArguments.__init__() got an unexpected keyword argument 'no_cuda'"
    d = explain(text, matrix=DRIFT, environment=NEW).diagnoses
    assert [(x.id, x.edit, x.has_cause) for x in d] == [
        ("unexpected-keyword", "TrainingArguments(no_cuda=...) -> TrainingArguments(use_cpu=...)", True)]


def test_cuda_oom_needs_a_cuda_gpu_to_be_here() -> None:
    t4 = make_env({"torch": "2.4.0"}, GPU_TARGETS["t4"])
    assert explain("CUDA out of memory", matrix=DRIFT, environment=t4).diagnoses[0].has_cause is True
    assert explain("CUDA out of memory", matrix=DRIFT, environment=NEW).diagnoses[0].has_cause is False


def test_whole_log_reports_each_symptom_once() -> None:
    log = Path("/work/shared/seeds/002_56a4181f157b074b.txt")
    text = log.read_text(encoding="utf-8") if log.exists() else "\n".join(p.values[0] for p in TEXTS[16:18])
    ids = [d.id for d in explain(text, matrix=DRIFT, environment=NEW).diagnoses]
    assert "trainingargs-evaluation-strategy" in ids and "sfttrainer-max-seq-length" in ids
    assert len(ids) == len(set(ids))


def test_cli_reads_stdin_and_exits_0(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("RuntimeError: operator torchvision::nms does not exist\n"))
    assert main(["explain", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("envdoctor explain [torchvision-nms]") and "fix:" in out and "here?" in out


def test_cli_file_json_and_unrecognised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "err.log"
    log.write_text("all fine\n", encoding="utf-8")
    assert main(["explain", str(log), "--format", "json"]) == 1
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert data["recognised"] is False and data["diagnoses"] == [] and data["schema_version"] == 1
    assert list(data) == sorted(data)


def test_cli_missing_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(tmp_path / "nope.log")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.log" in err and "Traceback" not in err


def test_excepthook_annotates_uncaught_errors() -> None:
    code = ("import envdoctor; envdoctor.install_excepthook(); "
            "raise TypeError(\"SFTTrainer.__init__() got an unexpected keyword argument 'max_seq_length'\")")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "envdoctor explain [sfttrainer-max-seq-length]" in proc.stderr


def test_excepthook_in_ipython() -> None:
    code = ("from IPython.testing.globalipapp import start_ipython; ip = start_ipython(); import envdoctor; "
            "envdoctor.install_excepthook(); "
            "ip.run_cell(\"raise RuntimeError('operator torchvision::nms does not exist')\")")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "envdoctor explain [torchvision-nms]" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
