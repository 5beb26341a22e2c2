"""The wrapper around each declared tool: what must run around the author's function, inside the SDK.

The gate (resource/gate.py) has already decided the call (identity, scopes, budget, arguments);
the wrapper keeps only what wraps the run, in order:

1. a fail-closed assertion that the gate authorized this call for this tool and this principal
   (a call that reached the tool any other way is refused and recorded);
2. the user's confirmation of a destructive call (guards/confirmation.py, recorded when given);
3. the ``tool.started`` record of a write or destructive call, committed before it runs;
4. the author's function, then the output guards on what it returns (guards/output.py);
5. the ``tool.call`` record, committed before the result is returned.

Author code that fails at any step (the tool, its ``preview=``) is answered as a tool error without
internal detail, and recorded. A call that cannot be recorded is not answered as done.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from mcp.server.apps import client_supports_apps
from mcp.types import CallToolResult, TextContent

from ringfence.audit.records import EventKind
from ringfence.declaration import ToolSpec
from ringfence.errors import ToolError
from ringfence.events import Events, SecurityEvent, principal_label
from ringfence.guards.confirmation import (
    CONFIRMATION_PARAMETER,
    CONFIRMATION_PARAMETERS,
    CONTEXT_PARAMETER,
    ELICITED_PARAMETER,
    SHOWN_PARAMETER,
    Checked,
    Confirmer,
    resolved_signature,
)
from ringfence.guards.output import META_INJECTION, guard_result, with_output_guards
from ringfence.monitor.tracing import tool_call_span
from ringfence.policy import ScopeCatalog, authorize, confirmation_channels
from ringfence.principal import Principal, current_authorization
from ringfence.refusals import Refusal

logger = logging.getLogger("ringfence.tools")


UNRECORDED = "unrecorded"  # a write or destructive call not run because its start could not be recorded
# How each confirmation verdict that stops a call is reported as the call's outcome.
CONFIRMATION_OUTCOMES = {"declined": "declined", "was_declined": "declined", "invalid": "declined",
                         "changed": "confirmation_required", "required": "confirmation_required"}
# Verdicts with no confirmation record of their own: nothing was answered, or the decline is on record already.
UNANSWERED = ("required", "was_declined")


def error_result(message: str, meta: dict[str, Any] | None = None) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True, _meta=meta)


def gate_authorized(spec: ToolSpec, catalog: ScopeCatalog) -> Principal | None:
    """The principal the gate authorized for this tool; :class:`Refusal` when the call did not pass the
    gate for it. A fail-closed assertion: the gate refuses such calls before the SDK sees them."""
    decision = current_authorization()
    if decision.tool != spec.name:
        raise Refusal(f"{spec.name} was not run: the call was not authorized.")
    authorize(spec, decision.principal, catalog)
    return decision.principal


def guard_tool(spec: ToolSpec, catalog: ScopeCatalog, confirmer: Confirmer | None,
               events: Events | None = None) -> Callable[..., Any]:
    """Wrap ``spec.fn`` so that every call passes ringfence's checks before and after it runs.

    With ``events``, every call is recorded (``tool.call``: outcome, latency, an argument summary
    without values) and the record is committed before the result is returned.
    """
    fn = with_output_guards(spec)  # what it returns is converted and checked before it leaves (guards/output.py)
    is_async = inspect.iscoroutinefunction(fn)
    confirmed = bool(confirmation_channels(spec))

    def not_run() -> Outcome:
        return Outcome(error_result(f"{spec.name} was not run: it could not be recorded. Try again shortly."),
                       UNRECORDED, ran=False)

    async def before_run(principal: Principal | None, kwargs: dict[str, Any]) -> Outcome | None:
        """The confirmation and the ``tool.started`` record: an outcome that stops the call, or ``None``."""
        if confirmed:
            assert confirmer is not None
            handle, elicited = kwargs.pop(CONFIRMATION_PARAMETER, None), kwargs.pop(ELICITED_PARAMETER, None)
            shown, context = kwargs.pop(SHOWN_PARAMETER, None), kwargs.pop(CONTEXT_PARAMETER, None)
            card = current_authorization().openai_host or (context is not None and client_supports_apps(context))
            check = await confirmer.check(spec, kwargs, principal, handle=handle, elicited=elicited,
                                          shown=shown, card=card)  # runs the author's preview
            if events is not None and not await recorded_confirmation(events, spec, principal, check):
                return not_run()
            if check.refused is not None:
                return Outcome(check.refused, CONFIRMATION_OUTCOMES[check.status], ran=False)
        if events is not None and spec.effect != "read" and not await recorded_start(events, spec, principal):
            return not_run()  # fail closed: a change to the user's data is never made without its audit trail
        return None

    async def run(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Outcome:
        if is_async:
            return Outcome(await fn(*args, **kwargs), "ok")
        return Outcome(await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs)), "ok")

    def author_failure(exc: Exception, *, ran: bool) -> Outcome:
        """A tool (or its preview) that raised: its ToolError message, else a generic one."""
        if isinstance(exc, ToolError):  # the author's message is output too: no secret leaves in it
            return Outcome(guard_result(spec, error_result(str(exc))), "error", ran=ran)
        # The detail goes to the server log only; the caller learns nothing internal.
        logger.exception("tool %s failed", spec.name, exc_info=exc)
        return Outcome(error_result(f"{spec.name} failed unexpectedly. The server has logged the details."),
                       "failed", ran=ran)

    async def contained_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Principal | None, Outcome]:
        """The call's outcome, whatever the author's code does; never an exception."""
        try:
            principal = gate_authorized(spec, catalog)
        except Refusal as refusal:
            logger.error("a call to %s reached the tool without the gate's authorization; refused", spec.name)
            return current_authorization().principal, Outcome(error_result(refusal.description), "refused", ran=False)
        try:
            stopped = await before_run(principal, kwargs)
        except Exception as exc:
            return principal, author_failure(exc, ran=False)
        if stopped is not None:
            return principal, stopped
        try:
            return principal, await run(args, kwargs)
        except Exception as exc:
            return principal, author_failure(exc, ran=True)

    @functools.wraps(fn)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        arguments = {k: v for k, v in kwargs.items() if k not in CONFIRMATION_PARAMETERS}
        with tool_call_span(spec.name, spec.effect) as span:  # OpenTelemetry; a no-op unless configured
            principal, outcome = await contained_call(args, kwargs)
            span.outcome(outcome.name)
        if events is None or outcome.name == UNRECORDED:
            return outcome.result
        try:
            await record_call(events, spec, principal, arguments, outcome, time.perf_counter() - started)
        except Exception:
            logger.exception("the audit record of a call to %s could not be written", spec.name)
            return unrecorded_result(spec, outcome)
        return outcome.result

    if confirmed:  # the SDK derives the schema from this signature: the tool's own, plus the handle
        assert confirmer is not None
        extra = confirmer.parameters(spec)
        signature = resolved_signature(spec.fn)
        signature = signature.replace(parameters=[*signature.parameters.values(), *extra])
        guarded.__signature__ = signature  # type: ignore[attr-defined]
        guarded.__annotations__ = {
            **{p.name: p.annotation for p in signature.parameters.values()}, "return": signature.return_annotation
        }
        del guarded.__wrapped__  # type: ignore[attr-defined]
    return guarded


@dataclass(frozen=True)
class Outcome:
    """What one call came to: the result to answer, its outcome name, and whether the tool itself ran."""

    result: Any
    name: str  # ok, error, failed, refused, declined, confirmation_required
    ran: bool = True


def unrecorded_result(spec: ToolSpec, outcome: Outcome) -> Any:
    """What a call answers when its record could not be written.

    A call whose tool never ran (refused, declined, waiting for confirmation, its preview failed)
    keeps its answer: nothing changed, and the caller needs the challenge or the confirmation link. A call
    that ran is not answered as done: its result is withheld, and a write says it must not be
    repeated blindly.
    """
    if not outcome.ran:
        return outcome.result
    if spec.effect == "read":
        return error_result(f"{spec.name} could not be recorded, so its result is withheld. Try again shortly.")
    return error_result(f"{spec.name} ran, but it could not be recorded, so its result is withheld. "
                        "Do not repeat it before checking with the user.")


async def recorded_confirmation(events: Events, spec: ToolSpec, principal: Principal | None,
                                check: Checked) -> bool:
    """Record the user's answer when it is given; ``False`` when an acceptance could not be recorded.

    An acceptance that cannot be recorded stops the call (fail closed); a decline, an invalid handle
    or a confirmation for what the call no longer does (``changed``) is recorded quietly, since
    nothing runs either way.
    """
    if check.status in UNANSWERED:
        return True
    kind = EventKind.CONFIRMATION_ACCEPTED if check.status == "accepted" else EventKind.CONFIRMATION_DECLINED
    event = SecurityEvent(kind, check.status, principal=principal_label(principal), tool=spec.name,
                          client_id=principal.client_id if principal else None, details={"channel": check.channel})
    if check.status != "accepted":
        await events.record_quietly(event)
        return True
    try:
        await events.record(event)
    except Exception:
        logger.exception("the confirmation of a call to %s could not be recorded; it was not run", spec.name)
        return False
    return True


async def recorded_start(events: Events, spec: ToolSpec, principal: Principal | None) -> bool:
    """Record that a write or destructive call is about to run (``tool.started``); ``False`` if that failed.

    With the start on record, a call that changes data is never left untraced: not when the audit
    store is down (the call does not run), nor when the process dies while it runs.
    """
    try:
        await events.record(SecurityEvent(EventKind.TOOL_STARTED, "started", principal=principal_label(principal),
                                          tool=spec.name, client_id=principal.client_id if principal else None,
                                          details={"effect": spec.effect}))
    except Exception:
        logger.exception("the start of a call to %s could not be recorded; it was not run", spec.name)
        return False
    return True


async def record_call(events: Events, spec: ToolSpec, principal: Principal | None, arguments: dict[str, Any],
                      outcome: Outcome, seconds: float) -> None:
    """The call's audit records after it ended: a prompt-injection flag, then ``tool.call``."""
    label = principal_label(principal)
    client_id = principal.client_id if principal else None
    result = outcome.result
    meta = getattr(result, "meta", None) or {}
    if META_INJECTION in meta:
        await events.record(SecurityEvent(EventKind.INJECTION_FLAGGED, "flagged", principal=label, tool=spec.name,
                                          client_id=client_id, details={"where": "result", **meta[META_INJECTION]}))
    details = {"effect": spec.effect, "open_world": spec.open_world,
               **events.summarize(arguments, spec.log_arguments)}
    await events.record(SecurityEvent(EventKind.TOOL_CALL, outcome.name, principal=label, tool=spec.name,
                                      client_id=client_id, latency_ms=seconds * 1000, details=details))
