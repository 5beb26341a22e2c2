"""``ringfence lint`` on widgets: what the Apps SDK forbids in a widget, and URLs its declared CSP would block.

Each rule fires on a small bad page and stays quiet on the near miss next to it; the reference app's
widget, ringfence's confirmation card and a page of near misses (``widget_apps.BENIGN_HTML``) lint clean.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ringfence.review.lint import lint_app
from ringfence.review.widget_lint import lint_widget, lint_widgets
from ringfence.ui.meta import confirmation_card, served_html
from ringfence.widgets import declare_widget
from tests.review.test_commands import cli
from tests.review.widget_apps import benign, broken

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


def findings(script: str = "", body: str = "", head: str = "", **csp: list[str]) -> list[tuple[str, int, str]]:
    """(code, line, message) of each finding on a page with ``head``, ``body`` and ``script`` (from line 4)."""
    html = f"<!doctype html>\n<html><head>{head}</head>\n<body>{body}\n<script>\n{script}\n</script></body></html>"
    widget = declare_widget("probe", html=html, description="A page under test.", **csp)
    return [(finding.code, finding.line or 0, finding.message) for finding in lint_widget(widget)]


def codes(*args: str, **csp: list[str]) -> list[str]:
    return [code for code, _, _ in findings(*args, **csp)]


# --- clean pages ----------------------------------------------------------------------------------------


def test_the_reference_widget_lints_clean(contacts_app):
    assert lint_widgets(contacts_app) == []


def test_the_confirmation_card_lints_clean_with_and_without_the_bridge_ringfence_adds():
    card = confirmation_card()
    assert lint_widget(card) == []
    served = declare_widget("served-card", html=served_html(card), description=card.description)
    assert lint_widget(served) == []


def test_a_page_of_near_misses_lints_clean():
    assert lint_widgets(benign) == []


# --- one rule at a time ---------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ['alert("saved")', 'window.confirm("sure?")', "prompt('name')", "self.alert(1)",
                                  'if (confirm("sure?")) { go(); }'])
def test_rf101_a_dialog_is_an_error(call):
    assert codes(call) == ["RF101"]


@pytest.mark.parametrize("near_miss", ['ringfence.confirm("x")', "function confirm(x) { return x; }",
                                       "var o = { alert(x) { return x; } };", "// alert(1) in a comment",
                                       "/* prompt(1) */", "var confirmation = 1;", 'show("press confirm(1)")',
                                       'document.getElementById("confirm")'])
def test_rf101_methods_definitions_comments_and_strings_are_not_dialogs(near_miss):
    assert codes(near_miss) == []


@pytest.mark.parametrize("call", ['navigator.clipboard.writeText("x")', 'document.execCommand("copy")'])
def test_rf102_the_clipboard_is_an_error(call):
    assert codes(call) == ["RF102"]


def test_rf102_the_word_clipboard_in_text_is_not_the_clipboard():
    assert codes('label.textContent = "navigator.clipboard is off"; var clipboard = null;') == []


@pytest.mark.parametrize("call", ['eval("1 + 1")', 'new Function("return 1")', 'setTimeout("go()", 10)',
                                  "setInterval('tick()', 10)", "window.eval(code)"])
def test_rf103_code_from_text_is_an_error(call):
    assert codes(call) == ["RF103"]


def test_rf103_a_function_given_to_set_timeout_and_names_containing_eval_are_fine():
    assert codes("setTimeout(function () { go(); }, 10); retrieval(1); isFunction(x); evaluate(2);") == []


def test_rf104_an_inline_event_handler_is_a_warning_on_its_own_line_and_its_script_is_checked():
    found = findings(body='<button\n  type="button"\n  onclick="alert(1)">Go</button>')
    assert [(code, line) for code, line, _ in found] == [("RF101", 5), ("RF104", 5)]
    assert "onclick=" in found[1][2]


def test_rf104_a_javascript_url_is_a_warning_and_a_data_attribute_is_not():
    assert codes(body='<a href="javascript:void(0)">x</a>') == ["RF104"]
    assert codes(body='<div data-on="x" one="1">x</div><input value="javascript: the good parts">') == []


@pytest.mark.parametrize(("script", "option"), [
    ('fetch("https://api.other.example/v1")', "connect_domains"),
    ("fetch(`https://api.other.example/v1/${id}`)", "connect_domains"),
    ('new WebSocket("wss://live.other.example/socket")', "connect_domains"),
    ('new EventSource("https://events.other.example/")', "connect_domains"),
    ('request.open("GET", "https://api.other.example/x")', "connect_domains"),
    ('navigator.sendBeacon("https://beacon.other.example/", data)', "connect_domains"),
    ('import("https://esm.other.example/module.js")', "resource_domains"),
])
def test_rf105_a_request_outside_the_csp_is_an_error_naming_the_option(script, option):
    [(code, _, message)] = findings(script)
    assert code == "RF105" and option in message


def test_rf105_a_declared_origin_or_a_wildcard_subdomain_is_fine_but_not_the_wildcards_own_domain():
    allowed = {"connect_domains": ["https://api.example.com", "https://*.cdn.example.com"]}
    assert codes('fetch("https://api.example.com/v1"); new WebSocket("wss://live.cdn.example.com/")', **allowed) == []
    assert codes('fetch("https://api.example.com:443/v1")', **allowed) == []  # the default port
    assert codes('fetch("https://cdn.example.com/")', **allowed) == ["RF105"]  # CSP host-source matching
    assert codes('fetch("https://api.example.com:8443/")', **allowed) == ["RF105"]


def test_rf105_a_url_in_a_string_that_is_not_requested_is_not_checked():
    assert codes('var help = "https://other.example/help"; show("fetch(https://other.example/)");') == []


@pytest.mark.parametrize(("markup", "where", "option"), [
    ('<script src="https://cdn.other.example/app.js"></script>', "head", "resource_domains"),
    ('<link rel="stylesheet" href="https://cdn.other.example/app.css">', "head", "resource_domains"),
    ('<style>body { background: url("https://img.other.example/bg.png") }</style>', "head", "resource_domains"),
    ('<div style="background: url(https://img.other.example/bg.png)"></div>', "body", "resource_domains"),
    ('<img src="https://img.other.example/a.png" alt="">', "body", "resource_domains"),
    ('<img srcset="https://img.other.example/a.png 2x" alt="">', "body", "resource_domains"),
    ('<iframe src="https://maps.other.example/embed"></iframe>', "body", "frame_domains"),
    ('<base href="https://other.example/">', "head", "base_uri_domains"),
])
def test_rf105_markup_loading_from_an_undeclared_origin_is_an_error(markup, where, option):
    [(code, _, message)] = findings(**{where: markup})
    assert code == "RF105" and option in message


def test_rf105_links_that_load_nothing_and_relative_or_data_urls_are_not_checked():
    assert codes(head='<link rel="canonical" href="https://other.example/page">',
                 body='<a href="https://other.example/">x</a><img src="data:image/png;base64,AAAA" alt="">'
                      '<img src="icon.png" alt="">') == []


def test_rf105_the_iframe_is_checked_against_frame_domains_not_resource_domains():
    assert codes(body='<iframe src="https://maps.example.com/embed"></iframe>',
                 resource_domains=["https://maps.example.com"]) == ["RF105"]
    widget = declare_widget("probe", html='<iframe src="https://maps.example.com/embed"></iframe>',
                            description="A page under test.", frame_domains=["https://maps.example.com"],
                            unsafe_allow_frames=True)
    assert lint_widget(widget) == []


def test_rf106_an_http_url_that_is_loaded_is_an_error_and_a_link_or_namespace_is_not():
    assert codes(body='<img src="http://img.example.com/a.png" alt="">') == ["RF106"]
    assert codes('fetch("http://api.example.com/")', connect_domains=["https://api.example.com"]) == ["RF106"]
    assert codes(body='<a href="http://example.com/">x</a><svg xmlns="http://www.w3.org/2000/svg"></svg>') == []


def test_rf107_a_token_in_the_page_is_an_error_on_its_line_and_is_not_repeated_in_the_message():
    [(code, line, message)] = findings(f'var token = "{JWT}";')
    assert (code, line) == ("RF107", 5) and JWT not in message and "JWT" in message


def test_rf107_a_quoted_password_is_a_secret_and_a_password_read_from_the_page_is_not():
    assert codes('const password = "correct-horse-battery";') == ["RF107"]
    assert codes('const password = document.getElementById("password").value;') == []


def test_rf108_a_new_window_without_noopener_is_a_warning():
    assert codes(body='<a href="https://example.com" target="_blank">x</a>') == ["RF108"]
    assert codes('window.open("https://example.com")') == ["RF108"]


def test_rf108_noopener_or_noreferrer_is_enough():
    assert codes(body='<a href="https://example.com" target="_blank" rel="noopener">x</a>'
                      '<a href="https://example.com" target="_blank" rel="noreferrer">y</a>') == []
    assert codes('window.open("https://example.com", "_blank", "noopener")') == []


# --- where findings go ----------------------------------------------------------------------------------


def test_findings_name_the_widget_its_file_and_the_line(tmp_path: Path):
    page = tmp_path / "probe.html"
    page.write_text("<!doctype html>\n<html><body>\n<script>\nalert(1)\n</script></body></html>\n")
    [finding] = lint_widget(declare_widget("probe", html=page, description="A page under test."))
    assert (finding.tool, finding.file, finding.line) == ("widget probe", str(page), 4)


def test_lint_app_still_lints_tools_only():
    assert lint_app(broken) == [] and [finding.code for finding in lint_widgets(broken)] == ["RF101", "RF105"]


def test_the_lint_command_reports_widget_codes_in_json_and_exits_1():
    result = CliRunner().invoke(cli, ["lint", "tests.review.widget_apps:broken", "--format", "json"])
    assert result.exit_code == 1
    reported = json.loads(result.stdout)
    assert [(finding["code"], finding["tool"], finding["line"]) for finding in reported] == [
        ("RF101", "widget notes", 2), ("RF105", "widget notes", 2)]


def test_the_lint_command_ignores_rf101_when_told_and_still_reports_the_rest():
    result = CliRunner().invoke(cli, ["lint", "tests.review.widget_apps:broken", "--ignore", "RF101"])
    assert result.exit_code == 1 and "RF101" not in result.stdout and "RF105 widget notes:" in result.stdout
    ignored = CliRunner().invoke(cli, ["lint", "tests.review.widget_apps:broken", "--ignore", "RF101",
                                       "--ignore", "rf105"])
    assert ignored.exit_code == 0 and "2 tools and 1 widgets checked: 0 errors, 0 warnings" in ignored.stderr
