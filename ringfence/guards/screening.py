"""Argument screening: validation at the HTTP layer, where the raw JSON arguments still exist.

The gate screens each ``tools/call`` before the SDK parses it: normalized arguments replace the
originals in the body the SDK sees, and a refusal is answered by the gate as a tool error
(a JSON-RPC result with ``isError``), so the SDK never parses the arguments and the tool never runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.mcpserver import MCPServer

from ringfence.declaration import ToolSpec
from ringfence.guards.validation import ArgumentValidator, InputRefused


class ArgumentScreen:
    """One validator per declared tool, built from the input schemas the SDK derives."""

    def __init__(self, tools: Mapping[str, ToolSpec]) -> None:
        self.tools = tools
        self.validators: dict[str, ArgumentValidator] = {}

    async def load(self, server: MCPServer) -> None:
        for tool in await server.list_tools():
            spec = self.tools.get(tool.name)
            if spec is not None:
                self.validators[tool.name] = ArgumentValidator(tool.input_schema, spec.limits)

    def screen(self, tool: str, arguments: Any) -> tuple[dict[str, Any] | None, InputRefused | None]:
        """The normalized arguments, or the refusal; a tool this app does not declare is not screened."""
        validator = self.validators.get(tool)
        if validator is None:
            return None, None
        try:
            return validator.check(arguments), None
        except InputRefused as refusal:
            return None, refusal
