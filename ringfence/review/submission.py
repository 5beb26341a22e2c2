"""What a ChatGPT app submission asks for, derived from the declarations: each tool's annotation hints
with a justification of each, and warnings about what review requires.

The justifications file is the Apps SDK's ``tool-hint-justifications.json`` (schema version 1). Its
hints are exactly the annotations ringfence serves (``runtime.annotations_for``), and every sentence
is said from the declaration (effect, scopes, returned data classes, ``open_world``, ``idempotent``,
how a destructive or irreversible call is confirmed), never written by hand: "incorrect or missing action labels
are a common cause of rejection" (Apps SDK submission guidelines).

  RF201 warning  a served widget without a domain: required for submission. The confirmation card takes
                 the domain the app's widgets name, so widgets naming different ones (or an app with no
                 widget of its own) leave the card without one
  RF202 warning  a widget with ``frame_domains``: "often not approved for broad distribution"
  RF203 warning  no ``privacy_policy_url=`` on the App: submission needs a published privacy policy
  RF204 warning  a read tool declared ``idempotent=False``: review accepts a read-only tool only if it is
                 "side-effect-free and safe to retry"

Widgets of one app with different domains are not a finding of their own: "unique per app" means no
other app uses the domain, which a lint of one app cannot see; what differing domains break here
(the card's domain) is RF201's.
"""

from __future__ import annotations

from typing import Any

from ringfence.app import App
from ringfence.declaration import ToolSpec
from ringfence.policy import ELICITATION, HANDLE, PAGE, confirmation_channels
from ringfence.review.lint import LintFinding
from ringfence.review.tools import reviewed_tools
from ringfence.runtime import annotations_for
from ringfence.ui.meta import CARD, served_widgets

SCHEMA = "https://developers.openai.com/apps-sdk/schemas/tool-hint-justifications.v1.json"
_CHANNELS = {ELICITATION: "the client's confirmation prompt", HANDLE: "ringfence's confirmation card",
             PAGE: "this app's signed-in confirmation page"}


def hint_justifications(app: App) -> dict[str, Any]:
    """The ``tool-hint-justifications.json`` document for every tool of ``app``, in declaration order."""
    tools = {}
    for tool in app.tools.values():
        hints = annotations_for(tool)
        tools[tool.name] = {
            "annotations": {"readOnlyHint": hints.read_only_hint, "openWorldHint": hints.open_world_hint,
                            "destructiveHint": hints.destructive_hint},
            "justifications": {"read_only_justification": read_only_justification(tool),
                               "open_world_justification": open_world_justification(tool),
                               "destructive_justification": destructive_justification(tool)},
        }
    return {"$schema": SCHEMA, "schema_version": 1, "tools": tools}


def read_only_justification(tool: ToolSpec) -> str:
    if tool.effect == "read":
        retry = "; calling it again with the same arguments has no further effect" if tool.idempotent else ""
        return (f'{tool.name} only reads: it is declared effect="read", {_access(tool)}, and {_returns(tool)}; '
                f"it creates, changes, deletes and sends nothing{retry}.")
    changes = "deletes or overwrites" if tool.effect == "destructive" else "creates or changes"
    undone = " in a way that cannot be undone" if tool.irreversible and tool.effect == "write" else ""
    return (f'{tool.name} is not read-only: it is declared effect="{tool.effect}" and {changes} data in '
            f"{_whose(tool)}{undone}; it {_access(tool)}.")


def open_world_justification(tool: ToolSpec) -> str:
    if tool.open_world:
        return (f"{tool.name} is declared open_world=True: it reaches outside {_whose(tool)}. ringfence marks the "
                "text it returns as untrusted data and scans it for prompt injection.")
    within = "this app's own data" if tool.is_public else _whose(tool)
    return (f"{tool.name} is declared open_world=False: it works only with {within} and publishes, sends or "
            "fetches nothing outside it.")


def destructive_justification(tool: ToolSpec) -> str:
    if tool.effect == "read":
        return f'{tool.name} is declared effect="read": it deletes and overwrites nothing.'
    if tool.effect == "write":
        said = (f'{tool.name} is declared effect="write", not "destructive": it adds or changes data but does not '
                "delete or overwrite it.")
        if tool.irreversible:
            sends = "sends or changes" if tool.open_world else "changes"
            return (f"{said} It is declared irreversible=True: it {sends} data in a way that cannot be undone, so "
                    f"{_confirmed(tool)}.")
        return said
    return (f'{tool.name} is declared effect="destructive": it may delete or overwrite data in {_whose(tool)}. '
            f"{_confirmed(tool)}.")


def _confirmed(tool: ToolSpec) -> str:
    """How each call of a confirmed tool waits for the user."""
    channels = sorted(_CHANNELS[channel] for channel in confirmation_channels(tool))
    how = channels[0] if len(channels) == 1 else f"{', '.join(channels[:-1])} or {channels[-1]}"
    return f"ringfence runs each call only after the user confirms that exact call, through {how}"


def _whose(tool: ToolSpec) -> str:
    return "this app" if tool.is_public else "the signed-in user's account in this app"


def _access(tool: ToolSpec) -> str:
    if tool.is_public:
        return "needs no sign-in"
    scopes = sorted(tool.scopes)
    return f"needs scope{'s' if len(scopes) > 1 else ''} {_and(scopes)} (checked on every call)"


def _returns(tool: ToolSpec) -> str:
    if not tool.returns:
        return "declares no data classes in what it returns"
    return f"returns {_and(sorted(tool.returns))} data"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def submission_findings(app: App) -> list[LintFinding]:
    """What ChatGPT's app review requires and the declarations do not yet give (all warnings)."""
    findings = []
    served = served_widgets(app.widgets, app.tools.values(), app.widget_domain)
    unnamed = [widget.name for widget in served.values() if widget.domain is None]
    for widget in served.values():
        where = f"widget {widget.name}"
        if widget.domain is None and (widget.name != CARD or unnamed == [CARD]):  # one fix covers both
            what = ("ringfence's confirmation card, shown for confirmed tools, has no domain (the app's widgets "
                    "name none, or different ones)" if widget.name == CARD else "no domain")
            findings.append(LintFinding("RF201", "warning", where, (
                f"{what}: ChatGPT requires a widget domain to submit, unique to this app; declare "
                "App(widget_domain=\"https://yourapp.example.com\") for all of its widgets"), widget.source))
        if widget.frame:
            findings.append(LintFinding("RF202", "warning", where, (
                "frame_domains are often not approved for broad distribution (Apps SDK submission guidelines); "
                "show the content without a frame if you can"), widget.source))
    if app.privacy_policy_url is None:
        findings.append(LintFinding("RF203", "warning", f"app {app.name}", (
            "no privacy policy URL is declared; publish one and pass App(privacy_policy_url=...) "
            "(`ringfence privacy` writes its retention and data-handling disclosure, which the server also "
            "publishes at /privacy and links to that policy)")))
    for reviewed in reviewed_tools(app):
        if reviewed.spec.effect == "read" and not reviewed.spec.idempotent:
            findings.append(LintFinding("RF204", "warning", reviewed.name, (
                'declared effect="read" with idempotent=False: review accepts a read-only tool only if it is '
                'side-effect-free and safe to retry; declare effect="write" if a call changes something'),
                *reviewed.source))
    return findings
