"""Trainer config: TOML + flags, every key validated, every problem reported at once."""

from __future__ import annotations

import pytest

from envdoctor.errors import ConfigError
from envdoctor.training.config import FIELDS, load_config

BASE = {"model": "m", "dataset": "d.jsonl", "output": "out"}


def test_flags_override_toml(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('[train]\nlora_r = 8\nlr = 1e-4\nlora_targets = ["q_proj"]\nmodel = "from-toml"\n')
    cfg = load_config(str(f), {**BASE, "lr": 3e-4, "lora_targets": "q_proj,v_proj"})
    assert cfg.lora_r == 8 and cfg.lr == 3e-4 and cfg.lora_targets == ["q_proj", "v_proj"] and cfg.model == "m"


def test_seed_defaults():
    cfg = load_config(None, BASE)
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.seq_len, cfg.effective_batch) == (64, 16, 0.1, 2048, 4)
    assert cfg.lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_every_problem_reported_with_file_and_hint(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("lora_rank = 8\nlr = -1\nmethod = 'dora'\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(f), BASE)
    msg = str(e.value)
    assert "unknown key 'lora_rank' (did you mean 'lora_r'?)" in msg
    assert "lr:" in msg and "method:" in msg and str(f) in msg


def test_bad_toml_and_missing_keys(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("lora_r = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(f), BASE)
    with pytest.raises(ConfigError, match="model, dataset, output not given"):
        load_config(None, {})


def test_every_key_has_a_flag():
    from envdoctor._cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for name in FIELDS:
        if name not in ("schema_version", "method"):
            assert "--" + name.replace("_", "-") in help_text, name


def test_all_linear_is_a_lora_target_on_its_own_only():
    assert load_config(None, {**BASE, "lora_targets": "all-linear"}).lora_targets == ["all-linear"]
    with pytest.raises(ConfigError, match="all-linear already names every linear layer"):
        load_config(None, {**BASE, "lora_targets": "all-linear,q_proj"})


def test_all_linear_is_planned_as_every_projection_of_a_layer():
    from envdoctor._env.gpu import declared
    from envdoctor.training.memory import KNOWN_SHAPES
    from envdoctor.training.runner import plan_run

    shape, gpu = KNOWN_SHAPES["llama-3.1-8b"], declared("h200")
    every = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    plans = [plan_run(load_config(None, {**BASE, "lora_targets": t, "batch_size": 1}), shape, gpu)
             for t in ("all-linear", every, "q_proj,k_proj,v_proj,o_proj")]
    assert plans[0].run is not None and plans[0].run.lora_targets == tuple(every.split(","))
    assert plans[0].estimate.total == plans[1].estimate.total > plans[2].estimate.total
