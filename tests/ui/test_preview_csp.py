"""The policy `ringfence preview` serves a widget under, from either form of its declared CSP."""

from __future__ import annotations

from ringfence.preview.csp import DeclaredCsp, declared_csp, widget_policy
from ringfence.preview.server import widget_may_call, with_shim

REPORT = "http://127.0.0.1:1/api/csp-report"


def test_each_declared_list_fills_its_directives() -> None:
    csp = DeclaredCsp(connect=("https://api.example.com",), resource=("https://*.cdn.example.com",),
                      frame=("https://maps.example.com",), base_uri=("https://example.com",))

    assert widget_policy(csp, REPORT) == (
        "default-src 'none'; script-src 'unsafe-inline' https://*.cdn.example.com; "
        "style-src 'unsafe-inline' https://*.cdn.example.com; img-src data: https://*.cdn.example.com; "
        "font-src data: https://*.cdn.example.com; media-src data: https://*.cdn.example.com; "
        "connect-src https://api.example.com; frame-src https://maps.example.com; base-uri https://example.com; "
        f"form-action 'none'; report-uri {REPORT}")


def test_both_forms_are_read_and_what_is_not_an_https_origin_is_dropped() -> None:
    apps = {"ui": {"csp": {"connectDomains": ["https://api.example.com", "*", "http://plain.example.com",
                                              "https://x.example.com; script-src *", "https://a.example.com/path"],
                           "frameDomains": "https://not-a-list.example.com"}}}
    openai = {"openai/widgetCSP": {"connect_domains": ["https://API.example.com/"], "redirect_domains": ["https://r.io"]}}

    assert declared_csp(apps, "mcp-apps") == DeclaredCsp(connect=("https://api.example.com",))
    assert declared_csp(openai, "openai") == DeclaredCsp(connect=("https://api.example.com",))
    assert declared_csp(None, "openai") == DeclaredCsp()


def test_a_host_lets_widgets_call_only_the_tools_visible_to_the_app() -> None:
    both = {"_meta": {"ui": {"visibility": ["model", "app"]}, "openai/widgetAccessible": True}}
    model_only = {"_meta": {"ui": {"visibility": ["model"]}, "openai/widgetAccessible": False}}

    assert widget_may_call(both, "mcp-apps") and widget_may_call(both, "openai")
    assert not widget_may_call(model_only, "mcp-apps") and not widget_may_call(model_only, "openai")
    assert widget_may_call({}, "mcp-apps") and not widget_may_call({}, "openai")  # each form's default


def test_the_shim_comes_first_in_head() -> None:
    html = '<!doctype html><html lang="en"><head><meta charset="utf-8"><script>1</script></head></html>'

    shimmed = with_shim(html, "SHIM")

    assert shimmed.index("SHIM") < shimmed.index("<meta") < shimmed.index("<script>1")
    assert with_shim("<p>no head</p>", "SHIM").startswith("<script>\nSHIM")


def test_a_header_element_is_not_taken_for_the_head() -> None:
    html = "<!doctype html><html><body><script>first()</script><header>Hi</header></body></html>"

    shimmed = with_shim(html, "SHIM")

    assert shimmed.index("SHIM") < shimmed.index("first()")  # after <html>, not inside <header>
    assert with_shim("<script>first()</script><header>Hi</header>", "SHIM").startswith("<script>\nSHIM")
