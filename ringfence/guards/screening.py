"""Argument screening: validation at the HTTP layer, where the raw JSON arguments still exist.

The gate screens each ``tools/call`` of a declared tool before the SDK parses it: the normalized
arguments are what the SDK gets, and a refusal is answered by the gate as a tool error (a JSON-RPC
result with ``isError``), so the SDK never parses the arguments and the tool never runs.
Arguments that look like a prompt injection are logged and counted, not refused.

The SDK validates the arguments it gets once more against the tool's pydantic model (it cannot be
told not to). Both validators come from the same signature; tests/guards/test_validator_agreement.py
shows that whatever this screen lets through, the SDK accepts unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from mcp.server.mcpserver import MCPServer

from ringfence.declaration import ToolSpec
from ringfence.guards.output import STATS, injection_flag, string_leaves
from ringfence.guards.validation import ArgumentValidator, InputRefused

logger = logging.getLogger("ringfence.screening")


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

    def screen(self, tool: str, arguments: Any) -> Screened:
        """The normalized arguments, or the refusal (also when the tool has no validator: fail closed)."""
        validator = self.validators.get(tool)
        if validator is None:
            logger.error("no argument validator for tool %s; its call was refused", tool)
            return Screened(None, InputRefused("arguments", "could not be checked"))
        try:
            normalized = validator.check(arguments)
        except InputRefused as refusal:
            return Screened(None, refusal)
        except Exception:  # a check that cannot run refuses the call (fail closed), and says so in the log
            logger.exception("the arguments of a call to %s could not be validated", tool)
            return Screened(None, InputRefused("arguments", "could not be checked"))
        return Screened(normalized, None, self._note_injection(tool, normalized))

    @staticmethod
    def _note_injection(tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        """Injection-like arguments are a signal for monitoring, not a refusal: the model relays users'
        text, and a false positive must not break a call. Logged without the text, and counted."""
        flag = injection_flag(string_leaves(arguments))
        if flag is not None:
            STATS.record(argument_injections=1)
            logger.warning("tool %s called with arguments that look like a prompt injection (score %s, rules %s)",
                           tool, flag["score"], ", ".join(flag["rules"]))
        return flag


class Screened(NamedTuple):
    """What screening made of a call's arguments."""

    arguments: dict[str, Any] | None  # normalized; None when refused or not screened
    refusal: InputRefused | None
    injection: dict[str, Any] | None = None  # {"score", "rules"} when they look like a prompt injection
