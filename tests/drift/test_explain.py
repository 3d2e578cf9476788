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
from envdoctor._env.gpu import GpuInfo, gpu_targets
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
    pytest.param("RuntimeError: Configured CUDA binary not found at /x/bitsandbytes/libbitsandbytes_cuda121.so",
                 "bitsandbytes-cuda-setup", id="bnb-configured-binary-0.46.0-source"),
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
    mps = make_env({"torch": "2.13.0"}, gpu_targets()["mps"])
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
    t4 = make_env({"torch": "2.4.0"}, gpu_targets()["t4"])
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


# ---------------------------------------------------------------- issue 13: the causes this environment has

CUDA_GPU = GpuInfo(True, "cuda", "NVIDIA H200", 141 * 2**30, (9, 0), source="nvml")
NO_GPU_TEXT = ("UserWarning: The installed version of bitsandbytes was compiled without GPU support. 8-bit "
               "optimizers, 8-bit multiplication, and GPU quantization are unavailable.")


def dist_info(root: Path, name: str, version: str, record: list[str] = (), direct_url: str | None = None,
              ) -> Distribution:
    """A real *.dist-info folder under root (its RECORD lists `record`), as the environment probe reads it."""
    folder = root / f"{name.replace('-', '_')}-{version.split('+')[0]}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    (folder / "RECORD").write_text("".join(f"{r},,\n" for r in record), encoding="utf-8")
    return Distribution(name, Version(version), version, path=str(folder), location=str(root), direct_url=direct_url)


def env_of(*dists: Distribution, gpu: GpuInfo | None = None) -> Environment:
    return Environment(executable=sys.executable, prefix="", python_version=Version("3.11.7"), markers={},
                       distributions={canonicalize_name(d.name): d for d in dists},
                       gpu=gpu or GpuInfo(False, reason="NVML not found"))


def bnb_dist(root: Path, version: str = "0.45.0", cuda: tuple[str, ...] = ("118", "121", "124")) -> Distribution:
    return dist_info(root, "bitsandbytes", version, [f"bitsandbytes/libbitsandbytes_cuda{c}.so" for c in cuda])


def one(text: str, env: Environment) -> Any:
    d = explain(text, matrix=DRIFT, environment=env).diagnoses
    assert len(d) == 1, [x.id for x in d]
    return d[0]


def test_bnb_no_gpu_here_is_the_cause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In CI there is no GPU: the CPU library is expected, and has_cause says so."""
    monkeypatch.delenv("BNB_CUDA_VERSION", raising=False)
    d = one(NO_GPU_TEXT, env_of(bnb_dist(tmp_path), make_dist(tmp_path, "torch", "2.4.0+cu124")))
    assert d.id == "bnb-no-gpu-build" and d.has_cause is True
    assert "no GPU detected here (NVML not found)" in d.why and "No CUDA GPU is visible" in d.cause
    assert d.facts is not None and d.facts["shipped_cuda_libraries"] == ["118", "121", "124"]


def make_dist(root: Path, name: str, version: str) -> Distribution:
    return Distribution(name, Version(version), version, location=str(root))


@pytest.mark.parametrize(("bnb", "torch", "has", "said"), [
    ("0.42.0", "2.4.0+cu121", True, "older than 0.43.0"),
    ("0.45.0", "2.4.0+cpu", True, "CPU build"),
    ("0.45.0", "2.4.0+cu126", True, "does not ship"),
    ("0.45.0", "2.4.0+cu124", False, "loads the CUDA library"),
], ids=["old-bnb", "cpu-torch", "no-library-for-torch-cuda", "fine-here"])
def test_bnb_with_a_gpu_names_the_reason_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bnb: str, torch: str,
                                              has: bool, said: str) -> None:
    monkeypatch.delenv("BNB_CUDA_VERSION", raising=False)
    env = env_of(bnb_dist(tmp_path, bnb), make_dist(tmp_path, "torch", torch), gpu=CUDA_GPU)
    d = one(NO_GPU_TEXT, env)
    assert (d.has_cause, said in d.why) == (has, True), d.why
    setup = one("RuntimeError:\n  CUDA Setup failed despite GPU being available. Please run", env)
    assert setup.id == "bitsandbytes-cuda-setup" and setup.has_cause is has


def test_bnb_cuda_setup_without_a_gpu_came_from_elsewhere(tmp_path: Path) -> None:
    d = one("CUDA Setup failed despite CUDA being available.", env_of(bnb_dist(tmp_path, "0.43.3")))
    assert d.has_cause is False and "no CUDA GPU detected here" in d.why and "another machine" in d.why


def test_bnb_cpu_library_undefined_symbol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BNB_CUDA_VERSION", raising=False)
    text = ("AttributeError: /opt/conda/lib/python3.10/site-packages/bitsandbytes/libbitsandbytes_cpu.so: "
            "undefined symbol:\ncget_col_row_stats")  # wrapped as pasted in h2oai/h2ogpt#432
    d = one(text, env_of(bnb_dist(tmp_path, "0.41.1", ()), make_dist(tmp_path, "torch", "2.0.1+cu117"), gpu=CUDA_GPU))
    assert d.id == "bnb-cpu-library" and d.has_cause is True and "0.41.1" in d.cause and "cget_col_row_stats" in d.cause


def test_bnb_cuda_version_override_is_judged_from_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "WARNING: BNB_CUDA_VERSION=124 environment variable detected; loading libbitsandbytes_cuda124.so."
    env = env_of(bnb_dist(tmp_path, "0.45.0", ("118", "121")), make_dist(tmp_path, "torch", "2.4.0+cu121"),
                 gpu=CUDA_GPU)
    monkeypatch.delenv("BNB_CUDA_VERSION", raising=False)
    unset = one(text, env)
    assert unset.has_cause is False and "not set in this environment" in unset.why
    assert "BNB_CUDA_VERSION=124" in unset.cause and "CUDA 12.1" in unset.cause
    monkeypatch.setenv("BNB_CUDA_VERSION", "124")
    d = one(text, env)
    assert d.has_cause is True and "does not ship" in d.why and "118, 121" in d.why
    monkeypatch.setenv("BNB_CUDA_VERSION", "121")
    assert one(text, env).has_cause is None  # matches torch's CUDA: nothing more can be read


FLASH = ("ImportError: /usr/lib/python3.10/site-packages/flash_attn_2_cuda.cpython-310-x86_64-linux-gnu.so: "
         "undefined symbol: _ZN3c104cuda9SetDeviceEi")
WHEEL_URL = json.dumps({"url": "https://example.invalid/v2.6.3/flash_attn-2.6.3%2Bcu123torch2.4cxx11abiFALSE-cp310-"
                               "cp310-linux_x86_64.whl", "archive_info": {}})


@pytest.mark.parametrize(("version", "direct_url", "torch", "has", "said"), [
    ("2.6.3", WHEEL_URL, "2.5.1", True, "built for torch 2.4, but torch 2.5.1"),
    ("2.6.3", WHEEL_URL, "2.4.1", False, "another environment"),
    ("2.6.3+cu123torch2.3cxx11abiTRUE", None, "2.4.0", True, "built for torch 2.3"),
    ("2.6.3", None, "2.4.0", None, "cannot be told"),
], ids=["wheel-url-other-torch", "wheel-url-same-torch", "local-label", "sdist-cannot-tell"])
def test_flash_attn_names_the_torch_it_was_built_for(tmp_path: Path, version: str, direct_url: str | None,
                                                     torch: str, has: bool | None, said: str) -> None:
    env = env_of(dist_info(tmp_path, "flash-attn", version, direct_url=direct_url),
                 make_dist(tmp_path, "torch", f"{torch}+cu124"))
    d = one(FLASH, env)
    assert d.id == "flash-attn-undefined-symbol" and d.has_cause is has and said in d.why, d.why
    assert "torch 2.5" not in d.fix or torch.startswith("2.5")
    assert f"torch {torch.rsplit('.', 1)[0]}" in d.fix and "cp310" in d.fix and "--no-build-isolation" in d.fix


def test_flash_attn_not_installed_here() -> None:
    d = one(FLASH, NEW)
    assert d.has_cause is None and "flash-attn is not installed here" in d.why


@pytest.mark.parametrize(("text", "pair"), [
    ("The conflict is caused by:\n  The user requested tokenizers==0.21.0\n  transformers 4.43.4 depends on "
     "tokenizers<0.20 ald >=0.19", ("the request tokenizers==0.21.0", "transformers 4.43.4 needs tokenizers<0.20")),
    ("The conflict is caused by:\n    vllm 0.19.1 depends on torch==2.10.0; platform_machine == \"aarch64\"\n"
     "    compressed-tensors 0.15.0.1 depends on torch>=1.7.0\n    vllm-ascend 0.19.1rc1 depends on torch==2.9.0",
     ("vllm 0.19.1 needs torch==2.10.0", "vllm-ascend 0.19.1rc1 needs torch==2.9.0")),
], ids=["requested-vs-dependency", "two-pins-among-three"])
def test_pip_conflict_block_names_the_real_pair(text: str, pair: tuple[str, str]) -> None:
    d = one(text, NEW)
    assert d.id == "resolution-impossible" and d.facts is not None and tuple(d.facts["pair"]) == pair
    assert "no version of" in d.cause and "e.g." not in d.cause


def test_removed_import_from_the_import_rules() -> None:
    text = "ImportError: cannot import name 'DataCollatorForCompletionOnlyLM' from 'trl' (/x/trl/__init__.py)"
    d = one(text, NEW)
    assert d.has_cause is True and "completion_only_loss" in d.fix and "0.20.0" in d.cause
    assert any("trl==0.20.0:trl/__init__.py" in e for e in d.evidence)
    assert one(text, make_env({"trl": "0.19.1"})).has_cause is False


def test_removed_import_without_a_rule_reads_the_installed_module() -> None:
    """No rule: whether the installed trl's own __init__.py names it (read as text, for real)."""
    missing = explain("ImportError: cannot import name 'NoSuchTrainer' from 'trl'", matrix=DRIFT).diagnoses
    assert [(d.id, d.has_cause) for d in missing] == [("removed-import", True)]
    present = explain("ImportError: cannot import name 'SFTTrainer' from 'trl'", matrix=DRIFT).diagnoses
    assert [(d.id, d.has_cause) for d in present] == [("removed-import", False)]
    assert "older copy was loaded" in present[0].cause and "has no `SFTTrainer`" in present[0].cause
    assert "has no `NoSuchTrainer`" in missing[0].cause and "trl " in missing[0].cause


def test_transformers_submodule_import_names_the_replacement() -> None:
    text = ("ImportError: cannot import name 'LlamaFlashAttention2' from "
            "'transformers.models.llama.modeling_llama'")
    d = one(text, NEW)
    assert d.id == "removed-import" and "attn_implementation" in d.fix and d.has_cause is True


@pytest.mark.parametrize("text", [
    # GitHub ate the dunder (bold) and curly quotes came with it (yeyupiaoling/Whisper-Finetune#112)
    "TypeError: Seq2SeqTrainingArguments.init() got an unexpected keyword argument ‘evaluation_strategy’",
    # italics ate the keyword's underscores
    "TypeError: TrainingArguments.__init__() got an unexpected keyword argument 'evaluation*strategy'",
    # wrapped by a terminal
    "TypeError: TrainingArguments.__init__() got an unexpected keyword\n    argument 'evaluation_strategy'",
], ids=["dunder-eaten-curly", "italics", "wrapped"])
def test_tolerant_matching_keeps_the_edit(text: str) -> None:
    d = one(text, NEW)
    assert d.id == "trainingargs-evaluation-strategy"
    assert d.edit == "TrainingArguments(evaluation_strategy=...) -> TrainingArguments(eval_strategy=...)"
    assert d.matched.startswith("TypeError:")


def test_tolerant_generic_keyword_is_restored_through_the_rename_data() -> None:
    d = one("TypeError: TrainingArguments.init() got an unexpected keyword argument 'nocuda'", NEW)
    assert (d.id, d.edit) == ("unexpected-keyword", "TrainingArguments(no_cuda=...) -> TrainingArguments(use_cpu=...)")


def test_rope_scaling_older_wordings() -> None:
    for text in ("`rope_scaling` must be a dictionary with with two fields, `type` and `factor`, got {...}",
                 "`rope_scaling` must be a dictionary with with two fields, `name` and `factor`, got {...}"):
        assert one(text, OLD).id == "rope-scaling-llama3"


def test_load_in_4bit_with_quantization_config_markdown_eaten() -> None:
    d = one("**ValueError: You can't pass load_in_4bitor load_in_8bit as a kwarg when passing quantization_config "
            "argument at the same time.**", NEW)
    assert d.id == "load-in-kbit-with-quantization-config" and "quantization_config=BitsAndBytesConfig" in d.fix


def test_json_carries_the_facts(tmp_path: Path) -> None:
    from envdoctor._render.explain import render_json

    data = json.loads(render_json(explain(NO_GPU_TEXT, matrix=DRIFT, environment=env_of(bnb_dist(tmp_path)))))
    assert data["diagnoses"][0]["facts"]["gpu"] == "none" and data["diagnoses"][0]["facts"]["bitsandbytes"] == "0.45.0"


def test_real_bitsandbytes_output_from_a_gpu_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bitsandbytes 0.50.2's own output on an H200 with BNB_CUDA_VERSION=999 (tests/drift/corpus/device)."""
    text = (Path(__file__).parent / "corpus" / "device" / "bnb-0.50.2-h200-bnb-cuda-version-999.txt").read_text()
    env = env_of(bnb_dist(tmp_path, "0.50.2", ("118", "121", "124", "126", "128", "130", "132")),
                 make_dist(tmp_path, "torch", "2.11.0+cu130"), gpu=CUDA_GPU)
    monkeypatch.setenv("BNB_CUDA_VERSION", "999")
    found = {d.id: d for d in explain(text, matrix=DRIFT, environment=env).diagnoses}
    assert {"bnb-cuda-version-override", "bitsandbytes-cuda-setup"} <= set(found)
    override = found["bnb-cuda-version-override"]
    assert override.has_cause is True and "libbitsandbytes_cuda999" in override.why and "CUDA 13.0" in override.cause
    assert found["bitsandbytes-cuda-setup"].has_cause is True
    monkeypatch.delenv("BNB_CUDA_VERSION")
    assert one(NO_GPU_TEXT, env).has_cause is False  # the right library for torch's CUDA 13.0 is there
