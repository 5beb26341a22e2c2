"""Widgets as a real `ringfence serve` serves them: resources in both forms, one decision for every call.

MCP Apps: a ``ui://`` resource of MIME ``text/html;profile=mcp-app`` with ``_meta.ui`` (csp, domain,
prefersBorder) and the ``io.modelcontextprotocol/ui`` extension advertised; Apps SDK (legacy): a
``text/html+skybridge`` resource with ``openai/widgetCSP`` and friends. A widget's call to a tool is
decided exactly like the model's (token, scopes, budgets, confirmation).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import served_trusting
from tests.support.cli import run_ringfence_many
from tests.support.http import jsonrpc_message, result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import ServeProcess

APPS_MIME, SKYBRIDGE_MIME = "text/html;profile=mcp-app", "text/html+skybridge"
WIDGET_CALL = {"openai/widgetSessionId": "w-1", "openai/locale": "en-GB"}  # what ChatGPT adds to a widget's call


def resources(server: ServeProcess) -> dict[str, dict]:
    """Every resource the server lists, with what ``resources/read`` returns for it."""
    listed = jsonrpc_message(server.request("resources/list"))["result"]["resources"]
    read = {}
    for resource in listed:
        [contents] = jsonrpc_message(server.request("resources/read", {"uri": resource["uri"]}))["result"]["contents"]
        read[resource["uri"]] = {"listed": resource, "contents": contents}
    return read


def test_each_widget_is_served_in_both_forms_whose_metadata_never_disagree(contacts):
    served = resources(contacts)
    tools = {tool["name"]: tool for tool in jsonrpc_message(contacts.request("tools/list"))["result"]["tools"]}
    pairs = [(tools[name]["_meta"]["ui"]["resourceUri"], tools[name]["_meta"]["openai/outputTemplate"])
             for name in ("search_contacts", "delete_contact")]
    assert sorted(uri for pair in pairs for uri in pair) == sorted(served)  # nothing served that no tool shows
    for apps_uri, skybridge_uri in pairs:
        apps, skybridge = served[apps_uri]["contents"], served[skybridge_uri]["contents"]
        assert (apps["mimeType"], skybridge["mimeType"]) == (APPS_MIME, SKYBRIDGE_MIME)
        assert apps["text"] == skybridge["text"] and "window.ringfence = bridge" in apps["text"]
        ui, openai = apps["_meta"]["ui"], skybridge["_meta"]
        assert ui["csp"]["connectDomains"] == openai["openai/widgetCSP"]["connect_domains"] == []
        assert ui["csp"]["resourceDomains"] == openai["openai/widgetCSP"]["resource_domains"] == []
        assert ui["csp"]["frameDomains"] == openai["openai/widgetCSP"]["frame_domains"] == []
        assert ui["domain"] == openai["openai/widgetDomain"] == "https://contacts.example.com"
        assert ui["prefersBorder"] is openai["openai/widgetPrefersBorder"] is True
        assert served[apps_uri]["listed"]["description"] == openai["openai/widgetDescription"]


def test_the_mcp_apps_extension_is_advertised_where_the_protocol_has_extensions(contacts):
    capabilities = jsonrpc_message(contacts.request("server/discover"))["result"]["capabilities"]  # 2026-07-28
    assert "io.modelcontextprotocol/ui" in capabilities["extensions"]


def test_the_widget_html_is_the_authors_with_the_bridge_added_and_no_secret_in_it(contacts):
    served = resources(contacts)
    [contact_list] = [entry["contents"]["text"] for uri, entry in served.items()
                      if uri.startswith("ui://contact-list/") and uri.endswith(".skybridge.html")]
    assert 'window.ringfence.onData(function (data)' in contact_list  # the author's script
    assert contact_list.index("window.ringfence = bridge") < contact_list.index("</head>")


def test_a_widgets_call_is_decided_like_the_models_no_token_no_scope_no_call(contacts, idp):
    anonymous = tool_result(contacts.call_tool("search_contacts", {"query": ""}, meta=WIDGET_CALL))
    assert anonymous["isError"] is True and "mcp/www_authenticate" in anonymous["_meta"]
    unscoped = idp.token(contacts.mcp_url, sub=new_subject(), scope="")
    refused = tool_result(contacts.call_tool("search_contacts", {"query": ""}, token=unscoped, meta=WIDGET_CALL))
    assert refused["isError"] is True and 'error="insufficient_scope"' in refused["_meta"]["mcp/www_authenticate"][0]
    reader = idp.token(contacts.mcp_url, sub=new_subject(), scope="contacts:read")
    found = tool_result(contacts.call_tool("search_contacts", {"query": ""}, token=reader, meta=WIDGET_CALL))
    assert found["isError"] is False and found["structuredContent"] == {"result": []}


@pytest.fixture(scope="module")
def framing(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with served_trusting(idp, tmp_path_factory.mktemp("framing"), target="tests/widgets/apps.py:framing") as server:
        yield server


def test_a_widget_that_frames_other_sites_is_named_as_unsafe_at_start_up(framing):
    assert ("UNSAFE option enabled: widget 'notes' may show pages of https://maps.example.com in frames "
            "(unsafe_allow_frames)") in framing.logs()


def test_every_declared_domain_reaches_the_host_in_the_form_it_reads(framing):
    served = resources(framing)
    [apps] = [entry["contents"] for uri, entry in served.items() if uri.endswith(".html")
              and not uri.endswith(".skybridge.html")]
    [skybridge] = [entry["contents"] for uri, entry in served.items() if uri.endswith(".skybridge.html")]
    assert apps["_meta"]["ui"]["csp"] == {
        "connectDomains": ["https://api.example.com"], "resourceDomains": ["https://*.cdn.example.com"],
        "frameDomains": ["https://maps.example.com"], "baseUriDomains": ["https://notes.example.com"]}
    assert skybridge["_meta"]["openai/widgetCSP"] == {
        "connect_domains": ["https://api.example.com"], "resource_domains": ["https://*.cdn.example.com"],
        "frame_domains": ["https://maps.example.com"], "redirect_domains": ["https://example.com"]}


def test_data_for_the_widget_alone_travels_in_meta_through_the_output_guards(framing, idp):
    token = idp.token(framing.mcp_url, sub=new_subject(), scope="notes:read")
    result = tool_result(framing.call_tool("list_notes", token=token))
    assert result["structuredContent"] == {"result": ["Shopping", "Ideas"]}
    widget = result["_meta"]["widget"]
    assert widget["layout"] == "compact"
    assert widget["secret"] == "[SECRET]" and "sk_live_" not in str(result)  # guarded like any output
    assert "compact" not in result_text(result)  # the model's text holds only the tool's value


def test_an_app_whose_widgets_do_not_fit_its_tools_does_not_start_and_says_why_in_one_line(tmp_path):
    runs = {name: (["serve", f"tests/widgets/apps.py:{name}", "--data-dir", str(tmp_path / name)], {})
            for name in ("undeclared", "shows_too_little", "calls_a_tool_that_does_not_exist")}
    outcomes = run_ringfence_many(runs, tmp_path)
    expected = {"undeclared": "shows widget 'notes', which is not declared",
                "shows_too_little": "widget 'notes' may not be shown",
                "calls_a_tool_that_does_not_exist": "calls ['delete_everything'], which are not tools"}
    for name, outcome in outcomes.items():
        assert outcome.returncode == 2, (name, outcome.stderr)
        [line] = [line for line in outcome.stderr.splitlines() if line.strip()]
        assert expected[name] in line and "Traceback" not in outcome.stderr


def test_a_resource_read_whose_mcp_name_header_names_another_uri_is_refused(contacts):
    """MCP 2026-07-28: ``Mcp-Name`` carries a resources/read's URI and must match the body (400 otherwise)."""
    [uri, *_] = resources(contacts)
    answer = contacts.request("resources/read", {"uri": uri}, headers={"mcp-name": "ui://elsewhere/x.html"})
    assert answer.status_code == 400 and "mcp-name" in answer.text
