"""An outbox: a write that cannot be undone (sending a message, open-world, ``irreversible=True``), one that
can (saving a draft, ``irreversible=False``), a destructive one, and a read. Sent messages stay in this
process, so a test sees how many times a send really ran."""

from __future__ import annotations

from pydantic import Field

from ringfence import App, Scope, current_principal

app = App(
    "outbox",
    title="Outbox",
    scopes=[
        Scope("outbox:read", "See your <b>sent</b> messages"),
        Scope("outbox:drafts", "Write and delete your drafts", implies=["outbox:read"]),
        Scope("outbox:send", "Send messages as you", implies=["outbox:read"]),
    ],
    privacy_policy_url="https://outbox.example.com/privacy",
)

SENT: list[tuple[str, str, str]] = []  # (owner, to, text) of every message sent
DRAFTS: dict[str, list[str]] = {}


@app.tool(effect="read", scopes=["outbox:read"], returns=["user_content", "contact"])
async def list_sent() -> list[str]:
    """The messages you sent, oldest first, as "to: text"."""
    return [f"{to}: {text}" for owner, to, text in SENT if owner == current_principal().subject]


def describe_send(to: str, text: str) -> str:
    return f"send {text!r} to {to}"


@app.tool(effect="write", scopes=["outbox:send"], open_world=True, irreversible=True, preview=describe_send,
           returns=["contact"])
async def send_message(to: str = Field(max_length=100), text: str = Field(max_length=500)) -> str:
    """Send a message to someone outside your account; a sent message cannot be called back."""
    SENT.append((current_principal().subject, to, text))
    return f"Sent to {to}."


@app.tool(effect="write", scopes=["outbox:drafts"], irreversible=False, returns=["user_content"])
async def save_draft(text: str = Field(max_length=500)) -> int:
    """Save a draft message; you can change or delete it later."""
    drafts = DRAFTS.setdefault(current_principal().subject, [])
    drafts.append(text)
    return len(drafts)


@app.tool(effect="destructive", scopes=["outbox:drafts"])
async def delete_drafts() -> str:
    """Delete all of your draft messages; they cannot be restored."""
    DRAFTS.pop(current_principal().subject, None)
    return "Deleted your drafts."
