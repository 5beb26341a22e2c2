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

The author's code (the preview and the tool) runs within the tool's ``timeout=`` (the app's default
otherwise), one deadline for both; past it the call is stopped, answered as a tool error and
recorded with the outcome ``timeout``. A plain (non-async) tool runs in a thread, which cannot be
stopped: past the deadline the call ends and says the thread was abandoned and may still complete.
Such threads are bounded (``SYNC_TOOL_THREADS`` for the process, a slot freed only when its thread
ends), so a tool that keeps running late cannot pile threads up; with every slot taken the call is
refused (outcome ``busy``). The user's confirmation is not timed: the SDK asks for it
before the wrapper runs. Inside, ringfence's HTTP client makes requests for this tool (network.py),
and a tool declared with ``provider_scopes=`` may read the caller's login-provider token
(principal.py); a result that carries such a token is withheld, so it never reaches the client.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from ringfence.guards.output import META_INJECTION, guard_result, output_findings, with_output_guards
from ringfence.monitor.tracing import tool_call_span
from ringfence.network import Reach, reaching_for
from ringfence.policy import ScopeCatalog, authorize, confirmation_channels
from ringfence.principal import Principal, ProviderAccess, ProviderTokenSource, acting_at, current_authorization
from ringfence.refusals import Refusal

logger = logging.getLogger("ringfence.tools")


UNRECORDED = "unrecorded"  # a write or destructive call not run because its start could not be recorded
TIMEOUT = "timeout"  # a call stopped at its deadline
BUSY = "busy"  # a plain tool not run: every thread for plain tools was taken
DEFAULT_TOOL_TIMEOUT = 30.0  # seconds, for a tool declared without timeout= in an App without tool_timeout=
SYNC_TOOL_THREADS = 40  # threads plain (non-async) tools may hold at once in the process, abandoned ones included
# How each confirmation verdict that stops a call is reported as the call's outcome.
CONFIRMATION_OUTCOMES = {"declined": "declined", "was_declined": "declined", "invalid": "declined",
                         "changed": "confirmation_required", "required": "confirmation_required"}
# Verdicts with no confirmation record of their own: nothing was answered, or the decline is on record already.
UNANSWERED = ("required", "was_declined")


def error_result(message: str, meta: dict[str, Any] | None = None) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True, _meta=meta)


class CallTimedOut(Exception):
    """The call's deadline passed while the author's code ran."""


async def within(deadline: float, awaitable: Any) -> Any:
    """``awaitable``'s result, or :class:`CallTimedOut` once the loop's clock reaches ``deadline``
    (a ``TimeoutError`` the author's code raises itself stays its own)."""
    limit = asyncio.timeout_at(deadline)
    try:
        async with limit:
            return await awaitable
    except TimeoutError:
        if limit.expired():
            raise CallTimedOut from None
        raise


class ThreadsBusy(Exception):
    """Every thread for plain tools is taken; ``abandoned`` of them by calls already past their deadline."""

    def __init__(self, abandoned: int) -> None:
        super().__init__(abandoned)
        self.abandoned = abandoned


class ToolThreads:
    """Threads for plain (non-async) tools, at most ``size`` at once.

    A slot is freed when its thread ends, not when the call stops waiting for it: a thread cannot be
    stopped, so a call past its deadline abandons the thread and its slot stays taken until the
    function returns (anyio's ``abandon_on_cancel`` frees it at once, letting threads grow unbounded).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._running = 0
        self._abandoned = 0

    async def run(self, fn: Callable[[], Any], deadline: float) -> Any:
        """``fn()``'s result in a thread of its own, with the caller's context; :class:`CallTimedOut` past
        ``deadline`` (the thread is abandoned), :class:`ThreadsBusy` when no slot is free."""
        with self._lock:
            if self._running >= self.size:
                raise ThreadsBusy(self._abandoned)
            self._running += 1
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        state = {"done": False, "abandoned": False}
        context = contextvars.copy_context()

        def work() -> None:
            try:
                settle = functools.partial(_set_result, answer, context.run(fn))
            except BaseException as exc:  # handed to the awaiting call, raised there
                settle = functools.partial(_set_exception, answer, exc)
            finally:
                with self._lock:
                    self._running -= 1
                    state["done"] = True
                    if state["abandoned"]:
                        self._abandoned -= 1
            try:
                loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the loop has closed: nobody waits for the answer
                pass

        try:
            threading.Thread(target=work, name="ringfence-tool", daemon=True).start()
        except BaseException:
            with self._lock:
                self._running -= 1
            raise
        try:
            return await within(deadline, answer)
        except BaseException:
            with self._lock:
                if not state["done"]:
                    state["abandoned"] = True
                    self._abandoned += 1
            raise


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


_tool_threads = ToolThreads(SYNC_TOOL_THREADS)


def gate_authorized(spec: ToolSpec, catalog: ScopeCatalog) -> Principal | None:
    """The principal the gate authorized for this tool; :class:`Refusal` when the call did not pass the
    gate for it. A fail-closed assertion: the gate refuses such calls before the SDK sees them."""
    decision = current_authorization()
    if decision.tool != spec.name:
        raise Refusal(f"{spec.name} was not run: the call was not authorized.")
    authorize(spec, decision.principal, catalog)
    return decision.principal


def guard_tool(spec: ToolSpec, catalog: ScopeCatalog, confirmer: Confirmer | None,
               events: Events | None = None, provider_tokens: ProviderTokenSource | None = None) -> Callable[..., Any]:
    """Wrap ``spec.fn`` so that every call passes ringfence's checks before and after it runs.

    With ``events``, every call is recorded (``tool.call``: outcome, latency, an argument summary
    without values) and the record is committed before the result is returned. A tool declared with
    ``provider_scopes=`` reads the caller's provider tokens from ``provider_tokens``.
    """
    fn = with_output_guards(spec)  # what it returns is converted and checked before it leaves (guards/output.py)
    is_async = inspect.iscoroutinefunction(fn)
    confirmed = bool(confirmation_channels(spec))
    seconds = spec.timeout or DEFAULT_TOOL_TIMEOUT
    reach = Reach.of(spec)  # the hosts its HTTP requests may go to, once per tool

    def not_run() -> Outcome:
        return Outcome(error_result(f"{spec.name} was not run: it could not be recorded. Try again shortly."),
                       UNRECORDED, ran=False)

    async def before_run(principal: Principal | None, kwargs: dict[str, Any], deadline: float) -> Outcome | None:
        """The confirmation and the ``tool.started`` record: an outcome that stops the call, or ``None``."""
        if confirmed:
            assert confirmer is not None
            handle, elicited = kwargs.pop(CONFIRMATION_PARAMETER, None), kwargs.pop(ELICITED_PARAMETER, None)
            shown, context = kwargs.pop(SHOWN_PARAMETER, None), kwargs.pop(CONTEXT_PARAMETER, None)
            card = current_authorization().openai_host or (context is not None and client_supports_apps(context))
            check = await within(deadline, confirmer.check(spec, kwargs, principal, handle=handle, elicited=elicited,
                                                           shown=shown, card=card))  # runs the author's preview
            if events is not None and not await recorded_confirmation(events, spec, principal, check):
                return not_run()
            if check.refused is not None:
                return Outcome(check.refused, CONFIRMATION_OUTCOMES[check.status], ran=False)
        if events is not None and spec.effect != "read" and not await recorded_start(events, spec, principal):
            return not_run()  # fail closed: a change to the user's data is never made without its audit trail
        return None

    async def run(args: tuple[Any, ...], kwargs: dict[str, Any], deadline: float) -> Outcome:
        if is_async:
            return Outcome(await within(deadline, fn(*args, **kwargs)), "ok")
        # A thread cannot be stopped: past the deadline the call ends and the thread is left to finish.
        return Outcome(await _tool_threads.run(functools.partial(fn, *args, **kwargs), deadline), "ok")

    def timed_out(*, ran: bool) -> Outcome:
        if ran and not is_async:
            logger.warning("tool %s ran past its %g s limit; its thread was abandoned and may still complete",
                           spec.name, seconds)
            message = f"{spec.name} was abandoned past its {seconds:g} s limit; it may still complete."
        else:
            logger.warning("tool %s took longer than %g s and was stopped", spec.name, seconds)
            message = f"{spec.name} took longer than {seconds:g} s and was stopped."
        if ran and spec.effect != "read":
            message += " Some of its changes may have been made: check before repeating it."
        return Outcome(error_result(message), TIMEOUT, ran=ran)

    def threads_busy(busy: ThreadsBusy) -> Outcome:
        logger.warning("tool %s was not run: all %d threads for plain tools are taken, %d by calls past their "
                       "limit", spec.name, _tool_threads.size, busy.abandoned)
        return Outcome(error_result(f"{spec.name} was not run: the server is busy with earlier calls that are "
                                    "still running. Try again shortly."), BUSY, ran=False)

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
        deadline = asyncio.get_running_loop().time() + seconds
        access = ProviderAccess(spec.name, spec.provider_scopes, provider_tokens) if spec.provider_scopes else None
        # ringfence's HTTP client makes requests for this tool (network.py); it may read provider tokens.
        with reaching_for(reach), acting_at(access):
            outcome = await author_run(principal, args, kwargs, deadline)
        if access is not None and access.handed_out:
            outcome = without_tokens(spec, outcome, access.handed_out)
        return principal, outcome

    async def author_run(principal: Principal | None, args: tuple[Any, ...], kwargs: dict[str, Any],
                         deadline: float) -> Outcome:
        try:
            stopped = await before_run(principal, kwargs, deadline)
        except CallTimedOut:
            return timed_out(ran=False)
        except Exception as exc:
            return author_failure(exc, ran=False)
        if stopped is not None:
            return stopped
        try:
            return await run(args, kwargs, deadline)
        except CallTimedOut:
            return timed_out(ran=True)
        except ThreadsBusy as busy:
            return threads_busy(busy)
        except Exception as exc:
            return author_failure(exc, ran=True)

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
    name: str  # ok, error, failed, refused, declined, confirmation_required, timeout, busy
    ran: bool = True


def without_tokens(spec: ToolSpec, outcome: Outcome, tokens: list[str]) -> Outcome:
    """The outcome, unless its result carries a login-provider token the call was handed: then withheld."""
    result = outcome.result
    text = result.model_dump_json() if isinstance(result, CallToolResult) else str(result)
    if not any(token in text for token in tokens):
        return outcome
    logger.error("tool %s put the caller's login-provider token in its result; the result was withheld", spec.name)
    return Outcome(error_result(f"{spec.name}'s result was withheld: it contained a sign-in token."), "failed",
                   ran=outcome.ran)


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
               **events.summarize(arguments, spec.log_arguments), **output_findings(meta)}
    await events.record(SecurityEvent(EventKind.TOOL_CALL, outcome.name, principal=label, tool=spec.name,
                                      client_id=client_id, latency_ms=seconds * 1000, details=details))
