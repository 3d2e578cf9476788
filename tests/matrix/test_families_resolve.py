"""The family matrices resolve with the real resolver (uv) on the public index, for their lowest and highest Python."""

from __future__ import annotations

import os

import pytest

from envdoctor._cli import main

FAMILIES = ["llama31", "qwen", "gemma", "mistral", "phi"]


@pytest.mark.network
@pytest.mark.parametrize("name", FAMILIES)
def test_the_family_matrix_resolves(name: str, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    # pip's own default index only: a local wheel folder or mirror configured on the machine must not decide
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    assert main(["matrix", "validate", name]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "Python 3.11 / linux: resolves" in out
