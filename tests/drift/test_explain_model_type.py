"""envdoctor explain on unknown model types: the type named, its floor from the table, the installed version."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from envdoctor._check.model import floors
from envdoctor._cli import main
from envdoctor._drift.explain import explain
from envdoctor._env.environment import Environment
from envdoctor.testing import fake_environment, make_dist

# transformers 4.37.0 .. 5.24.0 raise this from AutoConfig.from_pretrained
# (transformers==4.37.0:transformers/models/auto/configuration_auto.py:L1120,
#  transformers==4.50.0:...:L1116, transformers==5.24.0:...:L441; only the model type differs).
TAIL = ("but Transformers does not recognize this architecture. This could be because of an issue with the "
        "checkpoint, or because your version of Transformers is out of date.\n\nYou can update Transformers with "
        "the command `pip install --upgrade transformers`. If this does not work, and the checkpoint is very new, "
        "then there may not be a release version that supports this model yet. In this case, you can get the most "
        "up-to-date code by installing Transformers from source with the command "
        "`pip install git+https://github.com/huggingface/transformers.git`")


def value_error(model_type: str) -> str:
    return ("Traceback (most recent call last):\n  File \"train.py\", line 12, in <module>\n"
            "    model = AutoModelForCausalLM.from_pretrained(name)\n"
            f"ValueError: The checkpoint you are trying to load has model type `{model_type}` {TAIL}\n")


# transformers 4.36.x index CONFIG_MAPPING bare, so the user sees a KeyError
# (transformers==4.36.0:transformers/models/auto/configuration_auto.py:L1098 `CONFIG_MAPPING[config_dict["model_type"]]`
#  -> L795 `raise KeyError(key)`; the same lines in 4.36.2).
QWEN2_KEYERROR = """Traceback (most recent call last):
  File "/content/train.py", line 8, in <module>
    model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen1.5-7B")
  File "/usr/local/lib/python3.10/dist-packages/transformers/models/auto/auto_factory.py", line 526, in from_pretrained
    config, kwargs = AutoConfig.from_pretrained(
  File "/usr/local/lib/python3.10/dist-packages/transformers/models/auto/configuration_auto.py", line 1098, in from_pretrained
    config_class = CONFIG_MAPPING[config_dict["model_type"]]
  File "/usr/local/lib/python3.10/dist-packages/transformers/models/auto/configuration_auto.py", line 795, in __getitem__
    raise KeyError(key)
KeyError: 'qwen2'
"""

# The same ValueError pasted through GitHub markdown: backticks eaten, curly quotes, the line wrapped.
MARKDOWN = ("ValueError: The checkpoint you are trying to load has model type \u2018gemma3n\u2019\nbut Transformers "
            "does not recognize this architecture. This could be because of an issue with the checkpoint")


@pytest.fixture
def env_of(tmp_path: Path) -> Any:
    def make(transformers: str | None) -> Environment:
        site = tmp_path / f"site-{transformers}"
        site.mkdir()
        make_dist(site, "torch", "2.4.0")
        if transformers is not None:
            make_dist(site, "transformers", transformers)
        return fake_environment(site)
    return make


_READ = floors()["releases_read"]
RELEASES = f"{len(_READ)} releases, {_READ[0]} .. {_READ[-1]}"

CASES = [
    pytest.param(QWEN2_KEYERROR, "qwen2", "4.37.0", id="qwen2-keyerror-4.36"),
    pytest.param(value_error("qwen3"), "qwen3", "4.51.0", id="qwen3-valueerror"),
    pytest.param(value_error("gemma3"), "gemma3", "4.50.0", id="gemma3"),
    pytest.param(value_error("gemma3n"), "gemma3n", "4.53.0", id="gemma3n"),
    pytest.param(value_error("llama4"), "llama4", "4.51.0", id="llama4"),
    pytest.param(MARKDOWN, "gemma3n", "4.53.0", id="markdown-curly-quotes"),
]


@pytest.mark.parametrize(("text", "name", "floor"), CASES)
def test_below_the_floor_has_the_cause(text: str, name: str, floor: str, env_of: Any) -> None:
    installed = "4.36.2" if name == "qwen2" else "4.49.0"
    d, = [d for d in explain(text, matrix="drift", environment=env_of(installed)).diagnoses
          if d.id == "unknown-model-type"]
    assert d.has_cause is True
    assert d.cause.startswith(f"transformers {installed} does not know model type `{name}`; it first appears in {floor}")
    assert f"pip install -U 'transformers>={floor}'" in d.fix and "envdoctor fix" in d.fix
    assert d.evidence == (f"transformers=={floor}:transformers/models/auto/configuration_auto.py:"
                          f"{d.evidence[0].rsplit(':', 1)[1]}",)
    assert d.model_type is not None
    assert d.model_type == {"name": name, "floor": floor, "floor_exact": True, "installed": installed,
                            "releases_read": RELEASES}
    assert name in d.matched


@pytest.mark.parametrize(("text", "name", "floor"), CASES)
def test_at_the_floor_does_not(text: str, name: str, floor: str, env_of: Any) -> None:
    d, = explain(text, matrix="drift", environment=env_of(floor)).diagnoses
    assert d.has_cause is False and "another environment" in d.why
    assert f"does not know model type `{name}`" in d.cause and f"transformers {floor} does not" not in d.cause


def test_not_installed_or_not_inspected_cannot_tell(env_of: Any) -> None:
    d, = explain(value_error("qwen3"), matrix="drift", environment=env_of(None)).diagnoses
    assert d.has_cause is None and "not installed" in d.why and d.model_type and d.model_type["installed"] is None
    d, = explain(value_error("qwen3"), matrix="drift", inspect=False).diagnoses
    assert d.has_cause is None and "not inspected" in d.why


def test_a_lower_bound_floor_cannot_tell_below_it(env_of: Any) -> None:
    d, = explain(value_error("llama"), matrix="drift", environment=env_of("4.30.0")).diagnoses
    assert d.has_cause is None and "oldest release read" in d.cause and d.model_type
    assert d.model_type["floor_exact"] is False


def test_unknown_type_names_the_releases_read(env_of: Any) -> None:
    d, = explain(value_error("foo_bar"), matrix="drift", environment=env_of("5.24.0")).diagnoses
    assert d.has_cause is None and "`foo_bar`" in d.cause and RELEASES in d.cause
    assert "trust_remote_code=True" in d.fix and d.model_type and d.model_type["floor"] is None


def test_an_unrelated_keyerror_is_not_a_model_type(env_of: Any) -> None:
    text = "Traceback (most recent call last):\n  File \"x.py\", line 3, in <module>\n    batch['input_ids']\nKeyError: 'input_ids'\n"
    assert not [d for d in explain(text, matrix="drift", environment=env_of("4.49.0")).diagnoses
                if d.id == "unknown-model-type"]


def test_cli_text_and_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env_of: Any) -> None:
    import envdoctor._env.environment as environment

    env = env_of("4.49.0")
    monkeypatch.setattr(environment, "inspect_environment", lambda *a, **k: env)
    monkeypatch.setattr(sys, "stdin", io.StringIO(value_error("qwen3")))
    assert main(["explain", "-"]) == 0
    out = capsys.readouterr().out
    assert "envdoctor explain [unknown-model-type]" in out
    assert "model:     qwen3 needs transformers>=4.51.0; installed: transformers 4.49.0" in out
    assert "here?      yes:" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(value_error("qwen3")))
    assert main(["explain", "-", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema_version"] == 1 and list(data) == sorted(data)
    d, = data["diagnoses"]
    assert d["has_cause"] is True and d["model_type"]["floor"] == "4.51.0" and list(d) == sorted(d)
    assert d["model_type"]["installed"] == "4.49.0"
