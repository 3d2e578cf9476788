"""`envdoctor train` end to end on CPU: a tiny random Llama trains through the CLI; the gate refuses uncertified runs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envdoctor._cli import main

pytestmark = pytest.mark.slow


def _train(tiny: dict[str, Path], method: str, out: Path, *extra: str) -> int:
    return main(["train", method, "--model", str(tiny["model"]), "--dataset", str(tiny["data"]),
                 "--output", str(out), "--seq-len", "48", "--effective-batch", "2", *extra])


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_qlora_cpu_path_trains_saves_adapter_and_resumes(tiny, tmp_path, skip_guard, capsys):
    out = tmp_path / "run"
    assert _train(tiny, "qlora", out, "--max-steps", "3", "--lora-r", "4", "--save-steps", "2") == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = _metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in rows)
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "checkpoint-2" / "optimizer.pt").is_file()
    assert result["steps"] == 3 and result["resumed_from"] == 0 and result["schema_version"] == 1
    # a longer run in the same folder continues from the last checkpoint instead of starting over
    assert _train(tiny, "qlora", out, "--max-steps", "5", "--lora-r", "4") == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["resumed_from"] == 3 and result["steps"] == 5
    assert [r["step"] for r in _metrics(out)] == [1, 2, 3, 4, 5]


def test_galore_cpu_path_trains_full_model(tiny, tmp_path, skip_guard, capsys):
    out = tmp_path / "galore"
    cfg = tmp_path / "run.toml"
    cfg.write_text("[train]\ngalore_rank = 8\nmax_steps = 2\nlr = 1e-3\n", encoding="utf-8")
    assert _train(tiny, "galore", out, "--config", str(cfg)) == 0
    rows = _metrics(out)
    assert len(rows) == 2 and all(math.isfinite(r["loss"]) for r in rows)
    assert (out / "model" / "model.safetensors").is_file()


def test_bad_config_key_is_one_line_error(tiny, tmp_path, skip_guard, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text("lora_rank = 8\n", encoding="utf-8")
    assert _train(tiny, "qlora", tmp_path / "x", "--config", str(cfg)) == 2
    err = capsys.readouterr().err
    assert "unknown key 'lora_rank'" in err and "did you mean 'lora_r'" in err
    assert not (tmp_path / "x").exists()


def test_gate_refuses_uncertified_environment_and_creates_nothing(tiny, tmp_path):
    """No certificate in an empty cache: exit 1, the fix/certify commands, no output folder, torch never imported."""
    out = tmp_path / "refused"
    env = {k: v for k, v in os.environ.items() if k != "ENVDOCTOR_SKIP_GUARD"}
    env["ENVDOCTOR_CACHE_DIR"] = str(tmp_path / "empty-cache")
    code = (
        "import sys\n"
        "from envdoctor._cli import main\n"
        f"rc = main(['train', 'qlora', '--model', {str(tiny['model'])!r}, '--dataset', {str(tiny['data'])!r},"
        f" '--output', {str(out)!r}])\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'trl') if m in sys.modules]\n"
        "print('RC', rc, 'HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "RC 1 HEAVY []" in proc.stdout, proc.stdout + proc.stderr
    assert "envdoctor certify" in proc.stderr
    assert not out.exists()


def _result(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_masked_run_trains_responses_only_and_reports_tokens(tiny, tmp_path, skip_guard, capsys, jsonl):
    """Instruction rows: trained tokens are the responses (+ EOS); --train-on-prompt trains every token."""
    rows = [{"instruction": f"add {i} and {i + 1}", "input": "", "output": f"{2 * i + 1}"} for i in range(16)]
    data = jsonl(tmp_path / "inst.jsonl", rows)
    flags = ("--dataset", str(data), "--max-steps", "2", "--lora-r", "4", "--save-steps", "0", "--no-packing")
    assert _train(tiny, "qlora", tmp_path / "masked", *flags) == 0
    captured = capsys.readouterr()
    masked = json.loads(captured.out.strip().splitlines()[-1])
    assert "loss on: responses only" in captured.err and "data: loss on response" in captured.err
    # batch x accumulation = 2 rows per step, 2 steps: 4 rows, each "N </s>" trained of 12 tokens
    assert masked["trained_tokens"] == 4 * 2 and masked["seen_tokens"] == 4 * 12
    assert masked["world_size"] == 1 and "eval_loss" not in masked and list(masked) == sorted(masked)
    assert set(masked["stalls_s"]) == {"checkpoint", "data", "eval", "first_step"} and masked["tokens_per_s"] > 0
    assert _train(tiny, "qlora", tmp_path / "all", *flags, "--train-on-prompt") == 0
    every = _result(capsys)
    assert every["seen_tokens"] == masked["seen_tokens"] and every["trained_tokens"] == 4 * 11


class FakeWriter:
    """Stands in for TensorBoard's SummaryWriter (tensorboard is not a test dependency)."""

    scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag, value, step):  # type: ignore[no-untyped-def]
        self.scalars.append((tag, value, step))

    def close(self) -> None: ...


def test_eval_split_reports_eval_loss(tiny, tmp_path, skip_guard, capsys, monkeypatch):
    from envdoctor.training import logs

    monkeypatch.setattr(logs, "_writer", lambda out: FakeWriter())
    out = tmp_path / "eval"
    assert _train(tiny, "qlora", out, "--max-steps", "3", "--lora-r", "4", "--save-steps", "0", "--eval-split",
                  "0.2", "--eval-steps", "2") == 0
    result = _result(capsys)
    evals = [r for r in _metrics(out) if "eval_loss" in r]
    assert [r["step"] for r in evals] == [2, 3] and all(math.isfinite(r["eval_loss"]) for r in evals)
    assert result["eval_loss"] == evals[-1]["eval_loss"] and result["stalls_s"]["eval"] > 0
    assert [(t, s) for t, _, s in FakeWriter.scalars if t == "eval/loss"] == [("eval/loss", 2), ("eval/loss", 3)]


def test_eval_dataset_and_split_together_is_an_error(tiny, tmp_path, skip_guard, capsys):
    assert _train(tiny, "qlora", tmp_path / "x", "--eval-dataset", str(tiny["data"]), "--eval-split", "0.1") == 2
    assert "eval_dataset and eval_split" in capsys.readouterr().err


def test_memory_budget_that_nothing_fits_is_a_finding(tiny, tmp_path, skip_guard, capsys):
    """--max-memory-gib below any plan: exit 1 (a finding about the run, not a usage error), nothing written."""
    assert _train(tiny, "qlora", tmp_path / "x", "--gpu", "t4", "--max-memory-gib", "0.5") == 1
    err = capsys.readouterr().err
    assert "does not fit --max-memory-gib 0.5" in err and not (tmp_path / "x").exists()


def test_a_tokenizer_that_encodes_every_row_to_nothing_is_named_in_one_line(tiny, tmp_path, skip_guard, capsys):
    """A tokenizer that does not belong to the model (here a BPE with no merges: what transformers 5 makes of a
    word-level tokenizer.json in a Qwen2 folder) gives no tokens at all: the error names the tokenizer, not the
    dataset's masking."""
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    model = tmp_path / "model"
    shutil.copytree(tiny["model"], model)
    for f in model.glob("tokenizer*"):
        f.unlink()
    bpe = Tokenizer(models.BPE(vocab={"<unk>": 0, "<pad>": 1, "<s>": 2, "</s>": 3}, merges=[]))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>",
                            pad_token="<pad>").save_pretrained(model)
    code = main(["train", "qlora", "--model", str(model), "--dataset", str(tiny["data"]), "--output",
                 str(tmp_path / "x"), "--seq-len", "48", "--max-steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = next(x for x in err.splitlines() if x.startswith("envdoctor: error:"))
    assert f"model {model}: its tokenizer (" in line and "into no tokens" in line
    assert not (tmp_path / "x").exists()


def test_all_linear_adapts_every_linear_layer_but_the_head(tiny, tmp_path, skip_guard, capsys):
    """peft's "all-linear", as TRL's examples write it: adapters on the 7 projections of each layer, none on lm_head."""
    from safetensors import safe_open

    out = tmp_path / "all"
    assert _train(tiny, "qlora", out, "--max-steps", "1", "--lora-r", "4", "--lora-targets", "all-linear") == 0
    with safe_open(str(out / "adapter" / "adapter_model.safetensors"), "pt") as f:
        names = list(f.keys())
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n in names if ".lora_A" in n}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert len([n for n in names if ".lora_A" in n]) == 7 * 2 and not any("lm_head" in n for n in names)
