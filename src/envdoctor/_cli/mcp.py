"""`envdoctor mcp`: serve the read-only commands to coding assistants over MCP (stdio)."""

from __future__ import annotations

import argparse

HELP = """\
Serve check, explain, lint, plan-memory and matrix show/list as MCP tools over stdio, for coding
assistants. Every tool is read-only: nothing is fixed, installed or written. Needs the extra:
pip install 'envdoctor[mcp]'.

a client configuration (e.g. an assistant's mcpServers):
  {"envdoctor": {"command": "envdoctor", "args": ["mcp"]}}

exit codes: 0 the client closed the connection, 2 the MCP SDK is not installed
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `mcp` subcommand."""
    p = sub.add_parser("mcp", help="serve the read-only commands to coding assistants over MCP (stdio)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the MCP server until the client disconnects."""
    from ..errors import UsageError

    try:
        import mcp  # noqa: F401
    except ImportError as e:
        raise UsageError("envdoctor mcp needs the MCP SDK: pip install 'envdoctor[mcp]'") from e
    from .._mcp import serve

    serve()
    return 0
