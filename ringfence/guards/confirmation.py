"""Confirmation of confirmed tools (``destructive`` ones, and writes declared ``irreversible=True``: a sent
message, a payment), which the model cannot forge.

A call to a confirmed tool runs only with the user's confirmation of exactly that call and of
what it would do: the tool, a canonical hash of its arguments, the principal and the preview the
user was shown (one digest binds the four), within five minutes, once. The preview is rendered
again when the confirmed call comes to run: if what the call would do changed meanwhile (a
deleted record's id reused for another), the old confirmation does not apply and a new one is asked.
Without one, the call returns the preview and a pending confirmation, which the user gives in one
of three ways, whichever the client supports and the tool allows (``ringfence.policy.confirmation_channels``):

- MCP elicitation, through the SDK's portable ``Resolve(Elicit)`` form (both protocol eras);
- a widget button: a secret handle travels only in the result's ``_meta`` (the widget sees it,
  the model does not), and the widget calls the tool again with it as ``confirmation``;
- a confirmation page on this server (``/confirm/<page id>``, signed in, CSRF-protected): the
  model's retry with the same arguments then goes through. A tool declared ``confirm="page"``
  is confirmed this way only: the client can answer the first two without the user.

The page id the model may see is never a valid handle, so copying model-visible text authorizes
nothing. Redemption is one conditional UPDATE, so a confirmation is single-use across processes.
A decline on the page is remembered for a while: the model's retry is told the user declined.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import secrets
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python
from sqlalchemy import BigInteger, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from ringfence.declaration import ToolSpec
from ringfence.guards.confirmation_text import pending, question
from ringfence.guards.output import META_REDACTED, secrets_replaced
from ringfence.policy import ELICITATION, HANDLE, PAGE, confirmation_channels
from ringfence.principal import Principal, current_authorization
from ringfence.store.database import Database, InternalModel

logger = logging.getLogger("ringfence.confirmation")

CONFIRM_SECONDS = 300
DECLINE_REMEMBERED_SECONDS = 120  # after a decline on the page, the same call is answered "the user declined"
CONFIRMATION_PARAMETER = "confirmation"
ELICITED_PARAMETER = "ringfence_consent"
SHOWN_PARAMETER = "ringfence_shown"  # the preview the elicitation showed the user
CONTEXT_PARAMETER = "ringfence_context"  # the SDK's request context: does the client show widgets?
CONFIRMATION_PARAMETERS = (CONFIRMATION_PARAMETER, ELICITED_PARAMETER, SHOWN_PARAMETER, CONTEXT_PARAMETER)
_NOT_ASKED = "ringfence:not-asked"  # what the resolver returns when it does not elicit
_PREVIEW_FAILED = "ringfence:preview-failed"  # what it returns when the author's preview raised
_MAX_ANSWERS = 16  # answers looked at for one call (approvals and declines within their lifetime)

USER_DECLINED = "The user declined this action; do not retry unless they ask. Nothing was done."
CHANGED_SINCE_CONFIRMED = ("What this call would do has changed since the user confirmed it, so that "
                           "confirmation does not apply.")
CHANGED_WHILE_ASKED = ("What this call would do changed while the user was being asked, so their answer does not "
                       "apply; nothing was done. Call the tool again to ask them again.")

Redeemed = Literal["used", "declined", "changed", "missing"]


class PreviewFailed(RuntimeError):
    """The author's ``preview=`` raised while asking the user (logged where it happened)."""


class PendingConfirmation(InternalModel):
    __tablename__ = "ringfence_confirmations"

    handle_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    page_id: Mapped[str] = mapped_column(String(64), unique=True)
    tool: Mapped[str] = mapped_column(String(64))
    arguments_hash: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(Text)
    preview: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, approved, declined, used
    expires_at: Mapped[int] = mapped_column(BigInteger)
    # SHA-256 binding the tool, arguments hash, owner and preview (Call.binding); NULL: made before
    # revision 0003, which no call matches.
    binding_hash: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(2048))  # the OAuth client that asked, for the page


class Confirm(BaseModel):
    """What an elicitation asks the user."""

    confirm: bool = Field(description="Do it?")


def arguments_hash(arguments: dict[str, Any]) -> str:
    """SHA-256 of the arguments' canonical JSON: any change of argument needs a new confirmation."""
    return hashlib.sha256(_canonical(to_jsonable_python(arguments)).encode()).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hash(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def owner_key(principal: Principal | None) -> str:
    """Whose confirmation it is: the verified issuer and subject (any of their clients may use it)."""
    return principal.key if principal else "anonymous"


@dataclass(frozen=True)
class Call:
    """One call to a confirmed tool as a confirmation names it: the tool, its arguments' hash, whose it is."""

    tool: str
    arguments: str
    owner: str

    def binding(self, preview: str) -> str:
        """SHA-256 of this call and the preview the user sees: what a confirmation approves."""
        return hashlib.sha256(_canonical([self.tool, self.arguments, self.owner, preview]).encode()).hexdigest()

    def matches(self) -> list[Any]:
        return [PendingConfirmation.tool == self.tool, PendingConfirmation.arguments_hash == self.arguments,
                PendingConfirmation.owner == self.owner]


class ConfirmationStore:
    """Pending confirmations in the storage layer; every transition is one conditional UPDATE."""

    def __init__(self, database: Callable[[], Database]) -> None:
        self._database = database

    async def create(self, call: Call, preview: str, client_id: str | None) -> tuple[str, PendingConfirmation]:
        handle = secrets.token_urlsafe(32)
        record = PendingConfirmation(handle_hash=_hash(handle), page_id=secrets.token_urlsafe(16), tool=call.tool,
                                     arguments_hash=call.arguments, owner=call.owner, preview=preview,
                                     binding_hash=call.binding(preview), client_id=client_id, status="pending",
                                     expires_at=int(time.time()) + CONFIRM_SECONDS)
        async with self._database().session() as session:
            session.add(record)
        return handle, record

    async def redeem_handle(self, handle: str, call: Call, binding: str) -> Redeemed:
        """The widget path: the handle, for this call and this preview, in time, once."""
        by_handle = PendingConfirmation.handle_hash == _hash(handle)
        return await self._redeem(call, binding, ("pending", "approved"), by_handle)

    async def redeem_approval(self, call: Call, binding: str) -> Redeemed:
        """The page path: an approval the signed-in user gave for exactly this call and preview, once;
        else whether they declined this call lately, or approved it when it would have done something else."""
        return await self._redeem(call, binding, ("approved", "declined"))

    async def _redeem(self, call: Call, binding: str, states: tuple[str, ...], *where: Any) -> Redeemed:
        now = int(time.time())
        conditions = [*call.matches(), PendingConfirmation.expires_at >= now, *where]
        async with self._database().session() as session:
            answers = (await session.execute(
                select(PendingConfirmation.handle_hash, PendingConfirmation.binding_hash, PendingConfirmation.status)
                .where(*conditions, PendingConfirmation.status.in_(states))
                .order_by(PendingConfirmation.expires_at.desc()).limit(_MAX_ANSWERS))).all()
            matched = False  # an answer for exactly this call: if another request uses it first, it is gone
            for handle_hash, bound, status in answers:
                if status != "declined" and bound == binding:
                    matched = True
                    used = await session.execute(
                        update(PendingConfirmation)
                        .where(PendingConfirmation.handle_hash == handle_hash, PendingConfirmation.status == status,
                               *conditions)
                        .values(status="used"))
                    if used.rowcount == 1:
                        return "used"
        # A decline, like an approval, is an answer about what the user was shown: one for another
        # preview (the id now names someone else) neither refuses this call nor stops a new question.
        if any(status == "declined" and bound == binding for _, bound, status in answers):
            return "declined"
        if matched:
            return "missing"  # used by a request that came at the same moment (another instance, say)
        return "changed" if any(status != "declined" for _, _, status in answers) else "missing"

    async def page(self, page_id: str) -> PendingConfirmation | None:
        async with self._database().session() as session:
            return await session.scalar(select(PendingConfirmation).where(PendingConfirmation.page_id == page_id))

    async def decide(self, page_id: str, owner: str, *, approve: bool) -> bool:
        """The signed-in owner approves or declines a pending confirmation. A decline is remembered for
        ``DECLINE_REMEMBERED_SECONDS``, so that the model's retry is told instead of asking again."""
        now = int(time.time())
        answer = {"status": "approved"} if approve else {"status": "declined",
                                                         "expires_at": now + DECLINE_REMEMBERED_SECONDS}
        async with self._database().session() as session:
            result = await session.execute(
                update(PendingConfirmation)
                .where(PendingConfirmation.page_id == page_id, PendingConfirmation.owner == owner,
                       PendingConfirmation.status == "pending", PendingConfirmation.expires_at >= now)
                .values(**answer)
            )
            return result.rowcount == 1


def elicitation_answer(value: object) -> bool | None:
    """True (confirmed), False (declined or cancelled), or None when the client was not asked."""
    if isinstance(value, AcceptedElicitation):
        if value.data == _NOT_ASKED:
            return None
        if value.data == _PREVIEW_FAILED:
            raise PreviewFailed("the preview could not be made")
        return isinstance(value.data, Confirm) and value.data.confirm
    return False if value is not None else None


def resolved_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with its annotations evaluated (apps may use ``from __future__ import annotations``)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    signature = inspect.signature(fn)
    parameters = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
    return signature.replace(parameters=parameters, return_annotation=hints.get("return", signature.return_annotation))


def _with_signature(fn: Callable[..., Any], name: str, parameters: list[inspect.Parameter]) -> Callable[..., Any]:
    fn.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in parameters}
    fn.__name__ = fn.__qualname__ = name
    return fn


class Confirmer:
    """The confirmation step of the tool guard, for every tool ``confirmation_channels`` confirms
    (destructive tools and irreversible writes)."""

    def __init__(self, store: ConfirmationStore, page_url: str | None, app_name: str) -> None:
        self.store = store
        self.page_url = page_url  # "<origin>/confirm/" where this server has sign-in pages, else None
        self.app_name = app_name

    async def preview(self, spec: ToolSpec, arguments: dict[str, Any]) -> str:
        """The plain-language sentence of exactly what would happen (``preview=`` on the declaration)."""
        if spec.preview is not None:
            text = spec.preview(**arguments)
            return str(await text if inspect.isawaitable(text) else text)
        shown = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
        return f"Run {spec.title or spec.name}" + (f" with {shown}" if shown else "")

    def parameters(self, spec: ToolSpec) -> list[inspect.Parameter]:
        """The parameters a confirmed tool gets besides its own, by the ways it may be confirmed: the
        widget's handle; the elicitation and the preview it showed.

        The elicitation's preview is rendered (``render``) only when the client declared form
        elicitation and no handle was sent; otherwise the call falls back to the other ways. The SDK
        runs the resolvers before the tool wrapper, so the author's preview runs only for a call the
        gate authorized for this tool, and one that raises is contained (the wrapper answers and records it).
        """
        channels = confirmation_channels(spec)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in resolved_signature(spec.fn).parameters.values()]
        handle = inspect.Parameter(CONFIRMATION_PARAMETER, inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=Annotated[str | None, Field(
                                       description="Leave empty. Only the app's confirmation button fills this in.")])
        by_button = [handle] if HANDLE in channels else []
        extra = [*by_button, inspect.Parameter(CONTEXT_PARAMETER, inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
        if ELICITATION not in channels:
            return extra

        async def render(ctx: Context, **arguments: Any) -> str | None:
            capabilities = ctx.client_capabilities
            if arguments.pop(CONFIRMATION_PARAMETER, None) or capabilities is None or capabilities.elicitation is None:
                return None
            if current_authorization().tool != spec.name:
                return None  # not authorized: nothing of the author's runs; the wrapper refuses the call
            try:
                return await self.preview(spec, arguments)
            except Exception:
                logger.exception("the preview of a call to %s failed", spec.name)
                return _PREVIEW_FAILED

        async def ask(shown: str | None) -> Any:
            if shown is None or shown == _PREVIEW_FAILED:
                return _NOT_ASKED if shown is None else _PREVIEW_FAILED
            return Elicit(question(self.app_name, spec.title or spec.name, shown), Confirm)

        resolver_context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)
        _with_signature(render, f"preview_{spec.name}", [resolver_context, *own, *by_button])
        rendered = Annotated[str | None, Resolve(render)]
        _with_signature(ask, f"confirm_{spec.name}", [inspect.Parameter("shown", inspect.Parameter.KEYWORD_ONLY,
                                                                        annotation=rendered)])
        return [*extra,
                inspect.Parameter(ELICITED_PARAMETER, inspect.Parameter.KEYWORD_ONLY,
                                  annotation=Annotated[ElicitationResult[Confirm], Resolve(ask)]),
                inspect.Parameter(SHOWN_PARAMETER, inspect.Parameter.KEYWORD_ONLY, annotation=rendered)]

    async def check(self, spec: ToolSpec, arguments: dict[str, Any], principal: Principal | None, *,
                    handle: str | None, elicited: object, shown: str | None, card: bool = False) -> Checked:
        """Whether the call is confirmed (it may run), and if not, the result to answer instead.

        Runs the author's preview: what the call would do now, which the confirmation must be for.
        ``card``: the client shows widgets, so the confirmation card can be pressed.
        """
        channels = confirmation_channels(spec)
        answer = elicitation_answer(elicited) if ELICITATION in channels else None
        if answer is False:
            return Checked(_refused("You declined, so nothing was done."), "declined", ELICITATION)
        call = Call(spec.name, arguments_hash(arguments), owner_key(principal))
        preview = await self.preview(spec, arguments)
        if answer is True:
            if shown == preview:
                return Checked(None, "accepted", ELICITATION)
            return Checked(_refused(CHANGED_WHILE_ASKED), "changed", ELICITATION)
        binding = call.binding(preview)
        if handle is not None and HANDLE in channels:
            redeemed = await self.store.redeem_handle(handle, call, binding)
            if redeemed == "used":
                return Checked(None, "accepted", HANDLE)
            if redeemed != "changed":
                return Checked(_refused("This confirmation is not valid for this call (used, expired, or for other "
                                        "arguments); nothing was done. Call the tool again to get a new one."),
                               "invalid", HANDLE)
        else:
            redeemed = await self.store.redeem_approval(call, binding)
            if redeemed == "used":
                return Checked(None, "accepted", PAGE)
            if redeemed == "declined":
                return Checked(_refused(USER_DECLINED), "was_declined", PAGE)
        if redeemed == "changed":  # the confirmation given was for something else: ask about this
            asked = await self.ask_later(spec, arguments, call, preview, principal, changed=True, card=card)
            return Checked(asked, "changed", HANDLE if handle is not None else PAGE)
        asked = await self.ask_later(spec, arguments, call, preview, principal, changed=False, card=card)
        return Checked(asked, "required", None)

    async def ask_later(self, spec: ToolSpec, arguments: dict[str, Any], call: Call, preview: str,
                        principal: Principal | None, *, changed: bool, card: bool) -> CallToolResult:
        """A new pending confirmation: the preview, and how the user confirms (the handle only in ``_meta``,
        with the arguments, for the confirmation card)."""
        channels = confirmation_channels(spec)
        handle, record = await self.store.create(call, preview, principal.client_id if principal else None)
        page = f"{self.page_url}{record.page_id}" if self.page_url and principal and PAGE in channels else None
        # This result leaves without the output guards: secrets in the preview or the arguments are replaced
        # here, but personal data is not withheld. The preview names the record the call acts on (the
        # contact's e-mail address), which is what the user confirms, whatever the tool's returns= says.
        shown, in_preview = secrets_replaced(preview)
        sent_arguments, in_arguments = secrets_replaced(to_jsonable_python(arguments))
        redacted = sorted({*in_preview, *in_arguments})
        text = pending(shown, how_to_confirm(page, HANDLE in channels, card), CONFIRM_SECONDS // 60)
        confirmation = {"tool": spec.name, "preview": shown, "expires_at": record.expires_at,
                        "arguments": sent_arguments}
        if HANDLE in channels:
            confirmation["handle"] = handle
        meta: dict[str, Any] = {"ringfence/confirmation": confirmation}
        if redacted:
            logger.warning("tool %s: its confirmation preview or arguments held secrets; replaced: %s",
                           spec.name, ", ".join(redacted))
            meta[META_REDACTED] = redacted
        return CallToolResult(content=[TextContent(type="text", text=f"{CHANGED_SINCE_CONFIRMED} {text}"
                                                   if changed else text)],
                              is_error=True, _meta=meta)


def how_to_confirm(page: str | None, by_button: bool, card: bool) -> str:
    """How the user confirms, saying "press Confirm" on the card only where the client shows it."""
    if not by_button:
        return f"the user opens {page} (signed in) and presses Confirm; only that page can confirm this tool"
    if page and card:
        return f"the user opens {page} and presses Confirm, or presses Confirm on the card shown in the chat"
    if page:
        return f"the user opens {page} and presses Confirm"
    if card:
        return "the user presses Confirm on the card shown in the chat"
    return ("the user presses Confirm on this app's confirmation card, in a client that shows it (this one "
            "does not)")


@dataclass(frozen=True)
class Checked:
    """The confirmation step's verdict: ``refused`` is ``None`` when the call may run.

    ``status`` is ``accepted``; ``declined`` (the elicitation); ``was_declined`` (the user declined
    this call on the page lately); ``invalid`` (a handle that is used, expired, forged or for other
    arguments); ``changed`` (a confirmation given when the call would have done something else:
    it does not apply, a new one is asked); or ``required`` (a confirmation was just requested).
    ``channel`` says how the user answered: ``elicitation``, ``handle`` (the widget) or ``page``.
    """

    refused: CallToolResult | None
    status: str
    channel: str | None


def _refused(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
