"""The wrapper around each declared tool: the per-call checks that run inside the MCP SDK.

It keeps the function's signature (plus, for destructive tools, the confirmation parameters),
so the SDK still derives the input schema from it. Steps, in order: scope check (again, so a
call that reaches the tool any other way is still checked), the user's confirmation of a
destructive call (guards/confirmation.py), the author's function, the output guards on what it
returns (guards/output.py), and an error result that never carries internal detail.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from mcp.types import CallToolResult, TextContent

from ringfence.declaration import ToolSpec
from ringfence.guards.confirmation import (
    CONFIRMATION_PARAMETER,
    ELICITED_PARAMETER,
    Confirmer,
    confirmation_parameters,
    resolved_signature,
)
from ringfence.guards.output import guard_result, with_output_guards
from ringfence.policy import ScopeCatalog, authorize
from ringfence.principal import optional_principal
from ringfence.refusals import InvalidToken, Refusal, bearer_challenge

logger = logging.getLogger("ringfence.tools")


class ToolError(Exception):
    """Raise from a tool to refuse with a message the user may see (nothing else is shown)."""


def error_result(message: str, meta: dict[str, Any] | None = None) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True, _meta=meta)


def refusal_result(refusal: Refusal, resource_metadata_url: str) -> CallToolResult:
    """The Apps SDK form of an auth refusal: ``isError`` plus ``_meta["mcp/www_authenticate"]``.

    The challenge always carries ``error`` and ``error_description`` (Apps SDK auth guide).
    """
    if not refusal.error:  # a missing token: ChatGPT needs an error code to start linking
        refusal = InvalidToken(refusal.description, scopes=refusal.scopes)
    challenge = bearer_challenge(refusal, resource_metadata_url)
    return error_result(refusal.description, {"mcp/www_authenticate": [challenge]})


def guard_tool(spec: ToolSpec, catalog: ScopeCatalog, resource_metadata_url: str,
               confirmer: Confirmer) -> Callable[..., Any]:
    """Wrap ``spec.fn`` so that every call passes ringfence's checks before and after it runs."""
    fn = with_output_guards(spec)  # what it returns is converted and checked before it leaves (guards/output.py)
    is_async = inspect.iscoroutinefunction(fn)
    confirmed = spec.effect == "destructive"

    @functools.wraps(fn)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        principal = optional_principal()
        try:
            authorize(spec, principal, catalog)
        except Refusal as refusal:
            return refusal_result(refusal, resource_metadata_url)
        if confirmed:
            handle, elicited = kwargs.pop(CONFIRMATION_PARAMETER, None), kwargs.pop(ELICITED_PARAMETER, None)
            refused = await confirmer.check(spec, kwargs, handle, elicited, principal)
            if refused is not None:
                return refused
        try:
            if is_async:
                return await fn(*args, **kwargs)
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        except ToolError as exc:  # the author's message is output too: no secret leaves in it
            return guard_result(spec, error_result(str(exc)))
        except Exception:
            # The detail goes to the server log only; the caller learns nothing internal.
            logger.exception("tool %s failed", spec.name)
            return error_result(f"{spec.name} failed unexpectedly. The server has logged the details.")

    if confirmed:  # the SDK derives the schema from this signature: the tool's own, plus the handle
        extra = confirmation_parameters(spec, lambda arguments: confirmer.preview(spec, arguments))
        signature = resolved_signature(spec.fn)
        signature = signature.replace(parameters=[*signature.parameters.values(), *extra])
        guarded.__signature__ = signature  # type: ignore[attr-defined]
        guarded.__annotations__ = {
            **{p.name: p.annotation for p in signature.parameters.values()}, "return": signature.return_annotation
        }
        del guarded.__wrapped__  # type: ignore[attr-defined]
    return guarded
