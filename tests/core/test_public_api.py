"""The curated public surface: every exported name resolves, and importing envdoctor stays light."""

from __future__ import annotations

import subprocess
import sys

import envdoctor


def test_every_public_name_resolves() -> None:
    for name in envdoctor.__all__:
        assert getattr(envdoctor, name) is not None, name


def test_import_envdoctor_loads_nothing_heavy() -> None:
    code = ("import sys, envdoctor\n"
            "print([m for m in ('torch', 'transformers', 'bitsandbytes', 'pydantic', 'rich', 'packaging', 'pip')"
            " if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
