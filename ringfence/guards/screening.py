"""Argument screening: validation at the HTTP layer, where the raw JSON arguments still exist.

The gate screens each ``tools/call`` before the SDK parses it: normalized arguments replace the
originals in the body the SDK sees, and a refusal is handed to the tool guard, which answers it
as a tool error without running the tool (a JSON-RPC result, not an HTTP error).
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from mcp.server.mcpserver import MCPServer

from ringfence.declaration import ToolSpec
from ringfence.guards.validation import ArgumentValidator, InputRefused

_refusal: contextvars.ContextVar[InputRefused | None] = contextvars.ContextVar("ringfence_input", default=None)


def input_refusal() -> InputRefused | None:
    """The screening refusal of the call now running, if its arguments broke a rule."""
    return _refusal.get()


def bind_input_refusal(refusal: InputRefused | None) -> contextvars.Token[InputRefused | None]:
    return _refusal.set(refusal)


def unbind_input_refusal(token: contextvars.Token[InputRefused | None]) -> None:
    _refusal.reset(token)


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
