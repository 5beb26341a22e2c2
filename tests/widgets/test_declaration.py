"""Declaring a widget: what is refused when it is declared or served, and the two metadata forms derived from it.

Apps SDK security guide: widgets run under a strict CSP (only the domains they need, subframes off
unless declared) and nothing secret reaches them. Both host forms (MCP Apps ``_meta.ui``, OpenAI
``openai/*``) come from one declaration, so they cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringfence import App, DeclarationError
from ringfence.runtime import mcp_server_for
from ringfence.ui.meta import apps_csp, openai_csp, served_widgets, tool_widget_meta
from ringfence.widgets import check_widgets, declare_widget, frame_warnings
from tests.widgets.apps import WIDGET_HTML, notes_app

GOOD = {"html": WIDGET_HTML, "description": "Shows your notes."}


def remove_note() -> None:
    """A tool body for declarations that are refused before it could run."""


@pytest.mark.parametrize("domain", [
    "http://api.example.com",  # not https
    "*", "https://*", "https://*.com",  # wildcards over everything or a whole top-level domain
    "https://api.example.com/v1",  # a path: CSP sources here are origins
    "https://user@api.example.com", "javascript:alert(1)", "data:", "api.example.com",
])
@pytest.mark.parametrize("kind", ["connect", "resource", "redirect", "base_uri"])
def test_a_csp_domain_that_is_not_one_https_origin_is_refused(kind, domain):
    with pytest.raises(DeclarationError, match=r"https origin|wildcard"):
        declare_widget("notes", **GOOD, **{f"{kind}_domains": [domain]})


def test_a_wildcard_subdomain_of_a_named_site_is_allowed_as_the_apps_sdk_docs_use_it():
    widget = declare_widget("notes", **GOOD, resource_domains=["https://*.OAISTATIC.com/"])
    assert widget.resource == ("https://*.oaistatic.com",)


def test_frame_domains_are_refused_unless_explicitly_opted_into_and_then_named_at_start_up():
    with pytest.raises(DeclarationError, match="unsafe_allow_frames=True"):
        declare_widget("notes", **GOOD, frame_domains=["https://maps.example.com"])
    with pytest.raises(DeclarationError, match="unsafe_allow_frames=True"):
        declare_widget("notes", **GOOD, frame_domains=["https://maps.example.com"], unsafe_allow_frames="yes")
    widget = declare_widget("notes", **GOOD, frame_domains=["https://maps.example.com"], unsafe_allow_frames=True)
    assert frame_warnings([widget]) == [
        "widget 'notes' may show pages of https://maps.example.com in frames (unsafe_allow_frames)"]


def test_the_widget_domain_is_one_https_origin():
    assert declare_widget("notes", **GOOD, domain="https://notes.example.com").domain == "https://notes.example.com"
    for domain in ("https://*.example.com", "http://notes.example.com", "notes"):
        with pytest.raises(DeclarationError):
            declare_widget("notes", **GOOD, domain=domain)


def test_credentials_never_reach_a_widget():
    with pytest.raises(DeclarationError, match="credentials never reach a widget"):
        declare_widget("notes", **GOOD, shows=["personal", "credentials"])


@pytest.mark.parametrize(("declaration", "message"), [
    ({"description": "x"}, "needs html="),
    ({"html": WIDGET_HTML}, "needs a description"),
    ({"html": Path("/nonexistent/widget.html"), "description": "x"}, "cannot read its HTML"),
    ({**GOOD, "csp": {}}, "unknown declaration csp"),
    ({**GOOD, "calls": "list_notes"}, "takes a list"),
    ({**GOOD, "shows": ["secrets"]}, "unknown data classes"),
])
def test_a_widget_declaration_that_is_incomplete_or_wrong_says_what_to_fix(declaration, message):
    with pytest.raises(DeclarationError, match=message):
        declare_widget("notes", **declaration)


def test_the_html_may_come_from_a_file_which_lint_findings_then_name(tmp_path):
    page = tmp_path / "notes.html"
    page.write_text(WIDGET_HTML)
    widget = declare_widget("notes", html=page, description="Shows your notes.")
    assert widget.html == WIDGET_HTML and widget.source == str(page)


def test_a_widget_name_is_declared_once_and_is_a_uri_segment():
    app = App("notes")
    app.widget("notes", **GOOD)
    with pytest.raises(DeclarationError, match="declared twice"):
        app.widget("notes", **GOOD)
    with pytest.raises(DeclarationError, match="widget name"):
        app.widget("Notes/../x", **GOOD)


def test_a_destructive_tool_shows_the_confirmation_card_not_a_widget_of_its_own():
    app = App("notes")
    with pytest.raises(DeclarationError, match="confirmation card"):
        app.tool(effect="destructive", widget="notes")(remove_note)


@pytest.mark.parametrize("key", ["ui", "openai/outputTemplate", "openai/widgetAccessible"])
def test_widget_metadata_is_derived_and_cannot_be_set_by_hand(key):
    app = App("notes")
    with pytest.raises(DeclarationError, match="derived from widget="):
        app.tool(effect="read", meta={key: "ui://elsewhere/x.html"})(remove_note)


def test_serving_refuses_a_tool_whose_widget_is_not_declared_or_may_not_be_shown_its_data():
    from tests.widgets import apps

    with pytest.raises(DeclarationError, match="shows widget 'notes', which is not declared"):
        mcp_server_for(apps.undeclared)
    with pytest.raises(DeclarationError, match=r"returns \['user_content'\] data, which widget 'notes' may not"):
        mcp_server_for(apps.shows_too_little)
    with pytest.raises(DeclarationError, match=r"calls \['delete_everything'\], which are not tools"):
        check_widgets(apps.calls_a_tool_that_does_not_exist.widgets, apps.calls_a_tool_that_does_not_exist.tools)


def test_a_tool_no_widget_calls_is_for_the_model_only_and_one_a_widget_calls_is_marked_for_it():
    app = notes_app(shows=["user_content"], calls=["list_notes"])
    served = served_widgets(app.widgets, app.tools.values())
    shown = tool_widget_meta(app.tools["list_notes"], served)
    assert shown["ui"]["visibility"] == ["model", "app"] and shown["openai/widgetAccessible"] is True
    assert shown["ui"]["resourceUri"].startswith("ui://notes/") and shown["ui"]["resourceUri"].endswith(".html")
    assert shown["openai/outputTemplate"].endswith(".skybridge.html")
    assert all(len(shown[f"openai/toolInvocation/{key}"]) <= 64 for key in ("invoking", "invoked"))
    about = tool_widget_meta(app.tools["about"], served)
    assert about == {"ui": {"visibility": ["model"]}, "openai/widgetAccessible": False}


def test_an_app_without_widgets_or_destructive_tools_carries_no_widget_metadata():
    app = App("plain")
    app.tool(effect="read")(remove_note)
    assert tool_widget_meta(app.tools["remove_note"], served_widgets(app.widgets, app.tools.values())) == {}


def test_a_changed_widget_gets_a_new_resource_uri_so_no_host_serves_it_from_its_cache():
    before = declare_widget("notes", **GOOD)
    after = declare_widget("notes", **{**GOOD, "html": WIDGET_HTML.replace("Notes", "My notes")})
    assert before.version != after.version


origins = st.lists(st.from_regex(r"https://(\*\.)?[a-z]{1,8}\.(com|org|example)", fullmatch=True), max_size=3)


@given(connect=origins, resource=origins, frame=origins, redirect=origins, base_uri=origins)
def test_the_mcp_apps_and_openai_csp_forms_never_disagree(connect, resource, frame, redirect, base_uri):
    widget = declare_widget("notes", **GOOD, connect_domains=connect, resource_domains=resource,
                            frame_domains=frame, redirect_domains=redirect, base_uri_domains=base_uri,
                            unsafe_allow_frames=True)
    apps, openai = apps_csp(widget), openai_csp(widget)
    for apps_key, openai_key in (("connectDomains", "connect_domains"), ("resourceDomains", "resource_domains"),
                                 ("frameDomains", "frame_domains")):
        assert apps[apps_key] == openai[openai_key]
    assert openai["redirect_domains"] == list(widget.redirect)  # the legacy form alone has redirects
    assert apps["baseUriDomains"] == list(widget.base_uri)  # and MCP Apps alone has base-uri


def test_a_changed_widget_csp_or_html_makes_the_tools_lock_stale(tmp_path):
    from ringfence.review.lock import check_lock, write_lock

    lock = tmp_path / "tools.lock"
    write_lock(notes_app(shows=["user_content"]), lock)
    assert check_lock(notes_app(shows=["user_content"]), lock) == []
    wider = check_lock(notes_app(shows=["user_content"], connect_domains=["https://api.example.com"]), lock)
    assert [(difference.tool, difference.fields) for difference in wider] == [("list_notes", ("widget",))]
    edited = check_lock(notes_app(shows=["user_content"], html=WIDGET_HTML + "<!-- v2 -->"), lock)
    assert {difference.tool for difference in edited} == {"list_notes"}


def test_the_app_widget_domain_serves_every_widget_without_its_own_and_the_confirmation_card():
    app = notes_app(shows=["user_content"])
    app.widget("summary", html=WIDGET_HTML, description="Shows a summary.", domain="https://summary.example.com")
    app.tool(effect="destructive")(remove_note)
    served = served_widgets(app.widgets, app.tools.values(), "https://notes.example.com")
    assert {name: widget.domain for name, widget in served.items()} == {
        "notes": "https://notes.example.com", "summary": "https://summary.example.com",
        "ringfence-confirm": "https://notes.example.com"}
    with pytest.raises(DeclarationError, match="not a wildcard"):
        App("notes", widget_domain="https://*.example.com")
