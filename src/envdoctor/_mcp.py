"""`envdoctor mcp`: the read-only commands as MCP tools over stdio, for coding assistants (extra `envdoctor[mcp]`).

Each tool runs the envdoctor CLI with `--format json` in a subprocess of this interpreter: the answer is what
`envdoctor ... --format json` prints (one definition of every command), stdout stays the MCP transport's
alone, and a tool can never change the environment (no fix, certify, lock or train is offered).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, Literal

from ._version import __version__

INSTRUCTIONS = ("envdoctor checks LLM fine-tuning environments (torch, transformers, peft, bitsandbytes, trl) "
                "against versioned compatibility matrices. Every tool is read-only. exit_code: 0 all good, 1 problems "
                "found (a finding, not a failure), 2 bad input.")


def run_cli(argv: Sequence[str], stdin: str | None = None, timeout: float = 300.0) -> dict[str, Any]:
    """`envdoctor ARGV` in a subprocess: its exit code, its JSON report (or text), and its stderr."""
    proc = subprocess.run([sys.executable, "-m", "envdoctor", *argv], input=stdin, capture_output=True, text=True,
                          timeout=timeout)
    try:
        report: Any = json.loads(proc.stdout)
    except ValueError:
        report = proc.stdout
    return {"exit_code": proc.returncode, "report": report, "stderr": proc.stderr.strip()}


def _opt(flag: str, value: str | None) -> list[str]:
    return [flag, value] if value else []


def build_server() -> Any:
    """The MCP server with its read-only tools (imports the MCP SDK, which only the extra installs)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("envdoctor", version=__version__, instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only)
    def check(matrix: str | None = None, gpu: str | None = None, model: str | None = None,
              python: str | None = None) -> dict[str, Any]:
        """Check a Python environment and its GPU against a compatibility matrix (default llama31), without
        importing torch. gpu: a declared target (t4, a100-80gb, h200, ...) instead of the detected one; model: a
        config.json whose needs to check; python: another interpreter or venv. Findings carry reason and fix."""
        return run_cli(["check", "--format", "json", *_opt("--matrix", matrix), *_opt("--gpu", gpu),
                        *_opt("--model", model), *_opt("--python", python)])

    @server.tool(annotations=read_only)
    def explain(text: str, matrix: str | None = None) -> dict[str, Any]:
        """Explain an error message, traceback or log from a fine-tuning run: the cause, the fix, and whether
        this environment has the cause."""
        return run_cli(["explain", "-", "--format", "json", *_opt("--matrix", matrix)], stdin=text)

    @server.tool(annotations=read_only)
    def lint(paths: list[str], matrix: str | None = None) -> dict[str, Any]:
        """Find stale transformers/TRL keywords in .py scripts, .ipynb notebooks or folders: file, line,
        old -> new and why. With matrix, judge against its pinned versions instead of the installed ones.
        Never rewrites files."""
        return run_cli(["lint", "--format", "json", *_opt("--matrix", matrix), "--", *paths])

    @server.tool(name="plan_memory", annotations=read_only)
    def plan_memory(model: str, gpu: str, method: Literal["qlora", "galore"] = "qlora",
                    seq: int = 2048) -> dict[str, Any]:
        """Estimate peak GPU memory of a QLoRA or GaLore run of a model (config.json, folder or a known shape
        like llama-3.1-8b) on a GPU (t4, a100-40gb, h200, ...) and the batch/checkpointing plan that fits."""
        return run_cli(["plan-memory", "--format", "json", "--model", model, "--gpu", gpu, "--method", method,
                        "--seq", str(seq)])

    @server.tool(name="matrix_show", annotations=read_only)
    def matrix_show(matrix: str = "llama31") -> dict[str, Any]:
        """One compatibility matrix (name, name@version or a .toml path) with its rules, reasons and evidence."""
        return run_cli(["matrix", "show", matrix, "--format", "json"])

    @server.tool(name="matrix_list", annotations=read_only)
    def matrix_list() -> dict[str, Any]:
        """The matrices on the search path, with their versions."""
        return run_cli(["matrix", "list", "--format", "json"])

    return server


def serve() -> None:
    """Serve the tools over stdio until the client closes the connection."""
    build_server().run("stdio")
