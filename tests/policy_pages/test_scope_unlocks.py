"""``policy.unlocked_by``: what granting scopes lets the app do, derived from the tools they unlock, in the
words the consent page shows (issue #17 item 4)."""

from __future__ import annotations

from ringfence import App, Scope
from ringfence.policy import unlocked_by

SCOPES = [
    Scope("mail:read", "Read your mail"),
    Scope("mail:send", "Send mail as you", implies=["mail:read"]),
    Scope("calendar:write", "Change your calendar"),
    Scope("unused", "Nothing uses this"),
]


def outlook() -> App:
    app = App("mail", scopes=SCOPES)

    def tool(name: str, **declaration) -> None:  # type: ignore[no-untyped-def]
        async def fn() -> str:
            return "ok"
        app.tool(name=name, **declaration)(fn)

    tool("search_mail", effect="read", scopes=["mail:read"])
    tool("web_lookup", effect="read", scopes=["mail:read"], open_world=True)
    tool("send_mail", effect="write", scopes=["mail:send"], open_world=True, irreversible=True)
    tool("label_mail", effect="write", scopes=["mail:send"], irreversible=False)
    tool("purge_mail", effect="destructive", scopes=["mail:send"])
    tool("invite_from_mail", effect="write", scopes=["mail:read", "calendar:write"], open_world=True,
         irreversible=False)
    tool("app_info", effect="read")
    return app


def said(requested: list[str]) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    app = outlook()
    return {scope: [(item.power, item.tools) for item in items]
            for scope, items in unlocked_by(requested, app.catalog, app.tools.values()).items()}


def test_a_scope_speaks_for_the_tools_of_the_scopes_it_implies_most_consequential_first():
    assert said(["mail:send"]) == {"mail:send": [
        ("deletes", ("purge_mail",)),
        ("irreversible", ("send_mail",)),
        ("acts_outside", ("send_mail",)),
        ("changes", ("label_mail",)),
        ("looks_outside", ("web_lookup",)),
    ]}


def test_read_only_is_said_only_of_a_scope_that_unlocks_no_change():
    assert said(["calendar:write"]) == {"calendar:write": []}  # its one tool also needs mail:read
    assert said(["mail:read"]) == {"mail:read": [("looks_outside", ("web_lookup",)), ("reads", ("search_mail",))]}


def test_a_tool_needing_two_scopes_is_said_under_both_only_when_both_are_granted():
    both = said(["mail:read", "calendar:write"])
    assert ("acts_outside", ("invite_from_mail",)) in both["calendar:write"]
    assert ("acts_outside", ("invite_from_mail",)) in both["mail:read"]
    assert ("changes", ("invite_from_mail",)) in both["calendar:write"]


def test_public_tools_undeclared_and_unused_scopes_unlock_nothing():
    assert said(["unused", "offline_access", "other:scope"]) == {"unused": []}


def test_a_confirmation_is_promised_in_the_sentence_only_for_confirmed_tools():
    app = outlook()
    items = unlocked_by(["mail:send"], app.catalog, app.tools.values())["mail:send"]
    sentences = {item.power: item.sentence for item in items}
    assert sentences["deletes"] == "Lets the app delete your data (you confirm each deletion)"
    assert sentences["irreversible"] == "Lets the app do things that cannot be undone (you confirm each one)"
    assert sentences["acts_outside"] == "Lets the app act outside your account (for example, send messages)"


def test_a_tool_that_acts_at_the_login_provider_is_said_to_use_the_account_there():
    """``provider_scopes=``: the consent page says the app acts as the person where they sign in."""
    app = App("issues", scopes=[Scope("issues:read", "See your issues")])

    @app.tool(effect="read", scopes=["issues:read"], provider_scopes={"github": ["repo"]})
    async def my_issues() -> str:
        return "ok"

    (first, second) = unlocked_by(["issues:read"], app.catalog, app.tools.values())["issues:read"]
    assert (first.power, first.tools) == ("acts_as_you", ("my_issues",))
    assert first.sentence == "Lets the app use your account where you sign in, as you"
    assert (second.power, second.tools) == ("looks_outside", ("my_issues",))
