"""`envdoctor mcp`: the read-only tools answer the MCP SDK's own client over stdio."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")
import anyio  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

TOOLS = {"check", "explain", "lint", "plan_memory", "matrix_show", "matrix_list"}


def _result(call: Any) -> dict[str, Any]:
    assert not call.is_error, call
    if getattr(call, "structured_content", None):
        return dict(call.structured_content)
    return json.loads(call.content[0].text)


async def _session(calls: list[tuple[str, dict[str, Any]]]) -> tuple[set[str], dict[str, bool], list[dict[str, Any]]]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "envdoctor", "mcp"],
                                   env={"ENVDOCTOR_CACHE_DIR": os.environ["ENVDOCTOR_CACHE_DIR"]})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = (await session.list_tools()).tools
        read_only = {t.name: bool(t.annotations and t.annotations.read_only_hint) for t in listed}
        answers = [_result(await session.call_tool(name, args)) for name, args in calls]
    return {t.name for t in listed}, read_only, answers


@pytest.mark.slow  # six fresh interpreters behind one stdio session
def test_the_tools_answer_a_real_client(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("from transformers import TrainingArguments\n"
                      "args = TrainingArguments(output_dir='o', evaluation_strategy='no')\n", encoding="utf-8")
    names, read_only, (check, explain, lint, plan, show) = anyio.run(_session, [
        ("check", {"matrix": "llama31", "gpu": "t4"}),
        ("explain", {"text": "TypeError: TrainingArguments.__init__() got an unexpected keyword argument "
                             "'evaluation_strategy'"}),
        ("lint", {"paths": [str(script)]}),
        ("plan_memory", {"model": "llama-3.1-8b", "gpu": "a100-40gb"}),
        ("matrix_show", {"matrix": "llama31@2024.12"}),
    ])
    assert names == TOOLS and all(read_only.values())  # no fix, certify, lock or train over MCP
    assert check["exit_code"] in (0, 1) and check["report"]["matrix"].startswith("llama31@")
    assert explain["exit_code"] in (0, 1) and "eval_strategy" in json.dumps(explain["report"])
    assert lint["exit_code"] == 1 and any(i["keyword"] == "evaluation_strategy" for i in lint["report"]["issues"])
    assert plan["exit_code"] == 0 and plan["report"]
    assert show["exit_code"] == 0 and "transformers" in json.dumps(show["report"])
