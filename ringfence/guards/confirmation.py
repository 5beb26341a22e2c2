"""Confirmation of destructive tools, which the model cannot forge.

A call to a ``destructive`` tool runs only with the user's confirmation of exactly that call:
the tool, a canonical hash of its arguments, the principal, within five minutes, once. Without
one it returns a plain-language preview and a pending confirmation, which the user gives in one
of three ways, whichever the client supports:

- MCP elicitation, through the SDK's portable ``Resolve(Elicit)`` form (both protocol eras);
- a widget button: a secret handle travels only in the result's ``_meta`` (the widget sees it,
  the model does not), and the widget calls the tool again with it as ``confirmation``;
- a confirmation page on this server (``/confirm/<page id>``, signed in, CSRF-protected): the
  model's retry with the same arguments then goes through.

The page id the model may see is never a valid handle, so copying model-visible text authorizes
nothing. Redemption is one conditional UPDATE, so a confirmation is single-use across processes.
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
from typing import Annotated, Any

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python
from sqlalchemy import BigInteger, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from ringfence.declaration import ToolSpec
from ringfence.principal import Principal, current_authorization
from ringfence.store.database import Database, InternalModel

logger = logging.getLogger("ringfence.confirmation")

CONFIRM_SECONDS = 300
CONFIRMATION_PARAMETER = "confirmation"
ELICITED_PARAMETER = "ringfence_consent"
_NOT_ASKED = "ringfence:not-asked"  # what the resolver returns when it does not elicit
_PREVIEW_FAILED = "ringfence:preview-failed"  # what it returns when the author's preview raised


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


class Confirm(BaseModel):
    """What an elicitation asks the user."""

    confirm: bool = Field(description="Do it?")


def arguments_hash(arguments: dict[str, Any]) -> str:
    """SHA-256 of the arguments' canonical JSON: any change of argument needs a new confirmation."""
    canonical = json.dumps(to_jsonable_python(arguments), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _hash(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


class ConfirmationStore:
    """Pending confirmations in the storage layer; every transition is one conditional UPDATE."""

    def __init__(self, database: Callable[[], Database]) -> None:
        self._database = database

    async def create(self, tool: str, arguments: str, owner: str, preview: str) -> tuple[str, PendingConfirmation]:
        handle = secrets.token_urlsafe(32)
        record = PendingConfirmation(handle_hash=_hash(handle), page_id=secrets.token_urlsafe(16), tool=tool,
                                     arguments_hash=arguments, owner=owner, preview=preview, status="pending",
                                     expires_at=int(time.time()) + CONFIRM_SECONDS)
        async with self._database().session() as session:
            session.add(record)
        return handle, record

    async def redeem_handle(self, handle: str, tool: str, arguments: str, owner: str) -> bool:
        """The widget path: the handle, for this tool, these arguments, this principal, in time, once."""
        return await self._use(PendingConfirmation.handle_hash == _hash(handle), tool, arguments, owner,
                               ("pending", "approved"))

    async def redeem_approval(self, tool: str, arguments: str, owner: str) -> bool:
        """The page path: an approval the signed-in user gave for exactly this call, once."""
        return await self._use(None, tool, arguments, owner, ("approved",))

    async def _use(self, which, tool: str, arguments: str, owner: str, states: tuple[str, ...]) -> bool:  # type: ignore[no-untyped-def]
        conditions = [PendingConfirmation.tool == tool, PendingConfirmation.arguments_hash == arguments,
                      PendingConfirmation.owner == owner, PendingConfirmation.status.in_(states),
                      PendingConfirmation.expires_at >= int(time.time())]
        async with self._database().session() as session:
            if which is None:
                candidate = await session.scalar(select(PendingConfirmation.handle_hash).where(*conditions).limit(1))
                if candidate is None:
                    return False
                which = PendingConfirmation.handle_hash == candidate
            result = await session.execute(update(PendingConfirmation).where(which, *conditions).values(status="used"))
            return result.rowcount == 1

    async def page(self, page_id: str) -> PendingConfirmation | None:
        async with self._database().session() as session:
            return await session.scalar(select(PendingConfirmation).where(PendingConfirmation.page_id == page_id))

    async def decide(self, page_id: str, owner: str, *, approve: bool) -> bool:
        """The signed-in owner approves or declines a pending confirmation (a decline is recorded)."""
        async with self._database().session() as session:
            result = await session.execute(
                update(PendingConfirmation)
                .where(PendingConfirmation.page_id == page_id, PendingConfirmation.owner == owner,
                       PendingConfirmation.status == "pending",
                       PendingConfirmation.expires_at >= int(time.time()))
                .values(status="approved" if approve else "declined")
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


def confirmation_parameters(spec: ToolSpec, preview: Callable[[dict[str, Any]], Any]) -> list[inspect.Parameter]:
    """The parameters a destructive tool gets besides its own: the widget's handle, and the elicitation.

    The elicitation resolver asks only when the client declared form elicitation and no handle
    was sent; otherwise it answers "not asked" and the call falls back to the other two ways. The
    SDK runs it before the tool wrapper, so it runs the author's preview only for a call the gate
    authorized for this tool, and contains a preview that raises (the wrapper answers and records it).
    """
    own = list(resolved_signature(spec.fn).parameters.values())

    async def ask(ctx: Context, **arguments: Any) -> Any:
        capabilities = ctx.client_capabilities
        if arguments.get(CONFIRMATION_PARAMETER) or capabilities is None or capabilities.elicitation is None:
            return _NOT_ASKED
        if current_authorization().tool != spec.name:
            return _NOT_ASKED  # not authorized: nothing of the author's runs; the wrapper refuses the call
        arguments.pop(CONFIRMATION_PARAMETER, None)
        try:
            sentence = await preview(arguments)
        except Exception:
            logger.exception("the preview of a call to %s failed", spec.name)
            return _PREVIEW_FAILED
        return Elicit(f"Confirm: {sentence}", Confirm)

    handle = inspect.Parameter(CONFIRMATION_PARAMETER, inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=Annotated[str | None, Field(
                                   description="Leave empty. Only the app's confirmation button fills this in.")])
    resolver_parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)]
    resolver_parameters += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + [handle]
    ask.__signature__ = inspect.Signature(resolver_parameters)  # type: ignore[attr-defined]
    ask.__annotations__ = {p.name: p.annotation for p in resolver_parameters}
    ask.__name__ = ask.__qualname__ = f"confirm_{spec.name}"
    elicited = inspect.Parameter(ELICITED_PARAMETER, inspect.Parameter.KEYWORD_ONLY,
                                 annotation=Annotated[ElicitationResult[Confirm], Resolve(ask)])
    return [handle, elicited]


def owner_key(principal: Principal | None) -> str:
    """Whose confirmation it is: the verified issuer and subject (any of their clients may use it)."""
    return f"{principal.issuer}|{principal.subject}" if principal else "anonymous"


class Confirmer:
    """The confirmation step of the tool guard, for ``destructive`` tools."""

    def __init__(self, store: ConfirmationStore, page_url: str | None) -> None:
        self.store = store
        self.page_url = page_url  # "<origin>/confirm/" where this server has sign-in pages, else None

    async def preview(self, spec: ToolSpec, arguments: dict[str, Any]) -> str:
        """The plain-language sentence of exactly what would happen (``preview=`` on the declaration)."""
        if spec.preview is not None:
            text = spec.preview(**arguments)
            return str(await text if inspect.isawaitable(text) else text)
        shown = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
        return f"Run {spec.title or spec.name}" + (f" with {shown}" if shown else "")

    async def check(self, spec: ToolSpec, arguments: dict[str, Any], handle: str | None, elicited: object,
                    principal: Principal | None) -> Checked:
        """Whether the call is confirmed (it may run), and if not, the result to answer instead."""
        answer = elicitation_answer(elicited)
        if answer is True:
            return Checked(None, "accepted", "elicitation")
        owner, digest = owner_key(principal), arguments_hash(arguments)
        if answer is False:
            return Checked(_refused("You declined, so nothing was done."), "declined", "elicitation")
        if handle is not None:
            if await self.store.redeem_handle(handle, spec.name, digest, owner):
                return Checked(None, "accepted", "handle")
            return Checked(_refused("This confirmation is not valid for this call (used, expired, or for other "
                                    "arguments); nothing was done. Call the tool again to get a new one."),
                           "invalid", "handle")
        if await self.store.redeem_approval(spec.name, digest, owner):
            return Checked(None, "accepted", "page")
        preview = await self.preview(spec, arguments)
        handle, record = await self.store.create(spec.name, digest, owner, preview)
        where = f" open {self.page_url}{record.page_id} to confirm, or" if self.page_url and principal else ""
        text = (f"Not done yet: {preview}. The user must confirm first:{where} press Confirm in the app, "
                "within 5 minutes; then call the tool again with the same arguments.")
        meta = {"ringfence/confirmation": {"handle": handle, "tool": spec.name, "preview": preview,
                                           "expires_at": record.expires_at}}
        result = CallToolResult(content=[TextContent(type="text", text=text)], is_error=True, _meta=meta)
        return Checked(result, "required", None)


@dataclass(frozen=True)
class Checked:
    """The confirmation step's verdict: ``refused`` is ``None`` when the call may run.

    ``status`` is ``accepted``, ``declined``, ``invalid`` (a handle that is used, expired, forged
    or for other arguments) or ``required`` (a confirmation was just requested); ``channel`` says
    how the user answered: ``elicitation``, ``handle`` (the widget) or ``page``.
    """

    refused: CallToolResult | None
    status: str
    channel: str | None


def _refused(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
