"""An app whose open-world write does not say whether it can be undone: ``ringfence lint`` refuses it (RF009)."""

from __future__ import annotations

from ringfence import App, Scope

app = App("mailer", scopes=[Scope("mail:send", "Send e-mail as you")])


@app.tool(effect="write", scopes=["mail:send"], open_world=True)
async def send_email(to: str, body: str) -> str:
    """Send an e-mail on behalf of the user to the given address."""
    return "sent"
