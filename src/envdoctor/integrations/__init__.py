"""Hooks for other training stacks; each submodule imports its stack (`import envdoctor` imports none of them)."""

from __future__ import annotations
