"""Minimal data, enforced (issue #17 item 6), through a real ``ringfence serve``:

- identifier keys (``request_id``, ``traceId``, host session ids) are dropped from ``structuredContent``
  and its JSON text as from ``_meta``, at any depth, unless the output schema declares them;
- personal data a tool's ``returns=`` does not declare is withheld: replaced, in ``content``,
  ``structuredContent`` and ``_meta`` alike, by a note the model can read, flagged and recorded;
- a result the guards leave not matching its output schema becomes an error result, never a malformed one;
- ``unsafe_send_undeclared_personal_data=True`` sends it (flagged), and start-up says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import served_trusting
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.oauth import ringfence_cli
from tests.support.serve import ServeProcess

EMAIL = "jane.doe@example.com"
NOTE = "[withheld: undeclared personal data (e-mail address)]"
PHONE_NOTE = "[withheld: undeclared personal data (phone number)]"
API_KEY = "sk-proj-" + "T3BlbkFJq8ZxW2mN4vR7yK1pL9sD6fG0hJ5cV3bA"

MINIMAL_APP = '''
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from ringfence import App, ToolError

app = App("minimal")
EMAIL = "jane.doe@example.com"
API_KEY = "sk-proj-" + "T3BlbkFJq8ZxW2mN4vR7yK1pL9sD6fG0hJ5cV3bA"


class Person(BaseModel):
    name: str
    email: str


class Strict(BaseModel):
    name: str
    email: str = Field(json_schema_extra={"format": "email"})


class Short(BaseModel):
    phone: str = Field(max_length=20)


class Page(BaseModel):
    items: list[str]
    upstream: dict[str, Any]


class Span(BaseModel):
    trace_id: str
    name: str


class Agenda(BaseModel):
    session_title: str
    sessions: list[str]
    tracer: str


@app.tool(effect="read", returns=["public"])
async def undeclared_person() -> Person:
    """Declares public data, returns a person with an e-mail address."""
    return Person(name="Jane", email=EMAIL)


@app.tool(effect="read", returns=["contact"])
async def declared_person() -> Person:
    """Declares contact data: the e-mail address is sent."""
    return Person(name="Jane", email=EMAIL)


@app.tool(effect="read", returns=["public"], unsafe_send_undeclared_personal_data=True)
async def unsafe_person() -> Person:
    """Opts out: sends the undeclared e-mail address, flagged."""
    return Person(name="Jane", email=EMAIL)


@app.tool(effect="read", returns=["public"])
async def strict_person() -> Strict:
    """Its schema says the field is an e-mail address: the note cannot stand in it."""
    return Strict(name="Jane", email=EMAIL)


@app.tool(effect="read", returns=["public"])
async def short_phone() -> Short:
    """Its schema bounds the field below the note's length."""
    return Short(phone="+44 20 7946 0958")


@app.tool(effect="read", returns=["public"])
async def widget_email() -> CallToolResult:
    """An undeclared e-mail address in text, structured content and _meta."""
    return CallToolResult(content=[TextContent(type="text", text=f"Write to {EMAIL}")],
                          structured_content={"contact": EMAIL}, _meta={"card": {"mail": EMAIL}})


@app.tool(effect="read", returns=["public"])
async def refuses_with_email() -> str:
    """A refusal whose message carries an undeclared e-mail address."""
    raise ToolError(f"ask {EMAIL} for access")


@app.tool(effect="read", returns=["public"])
async def upstream_page() -> Page:
    """Passes an upstream API's telemetry on, nested in a field the schema leaves open."""
    return Page(items=["a"], upstream={"request_id": "req-7f3a", "debug": {"traceId": "4bf92f35"}, "status": "ok"})


@app.tool(effect="read", returns=["public"])
async def top_level_ids() -> dict[str, Any]:
    """Identifier keys at the top level of an object the schema leaves open."""
    return {"request_id": "req-1", "x-correlation-id": "c-1", "openai/session": "conv-1", "page": 2}


@app.tool(effect="read", returns=["public"])
async def untyped() -> dict:
    """No output schema: the SDK sends the dict as JSON text only."""
    return {"data": [1, 2], "meta": {"requestId": "req-9"}}


@app.tool(effect="read", returns=["public"])
async def declared_trace() -> Span:
    """A trace viewer: trace_id is the data its return type declares."""
    return Span(trace_id="4bf92f3577b34da6a3ce929d0e0e4736", name="GET /")


async def describe_archive(note: str) -> str:
    return f"archive the notes of {EMAIL} (their key {API_KEY})"


@app.tool(effect="destructive", returns=[], preview=describe_archive)
async def archive_notes(note: str) -> str:
    """A confirmed tool whose preview names the person and whose preview and argument hold a secret."""
    return "archived"


async def describe_labels(labels: dict[str, str]) -> str:
    return f"relabel {len(labels)} notes"


@app.tool(effect="destructive", returns=[], preview=describe_labels)
async def relabel_notes(labels: dict[str, str]) -> str:
    """A confirmed tool whose argument's keys may hold secrets."""
    return "relabelled"


@app.tool(effect="read", returns=["public"])
async def agenda() -> Agenda:
    """A conference agenda: "session" and "trace" name the data here, not an identifier."""
    return Agenda(session_title="Keynote", sessions=["Keynote", "Lunch"], tracer="Ada")
'''


@pytest.fixture(scope="module")
def minimal_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("minimal")
    (data / "minimal_app.py").write_text(MINIMAL_APP)
    return data


@pytest.fixture(scope="module")
def minimal(idp: TestIdentityProvider, minimal_data: Path) -> Iterator[ServeProcess]:
    with served_trusting(idp, minimal_data, target=str(minimal_data / "minimal_app.py")) as server:
        yield server


def app_meta(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in (result.get("_meta") or {}).items()
            if not key.startswith("io.modelcontextprotocol/")}


def call(server: ServeProcess, tool: str, request_id: str | None = None) -> tuple[dict[str, Any], str]:
    response = server.call_tool(tool, headers={"x-request-id": request_id} if request_id else None)
    assert response.status_code == 200
    return tool_result(response), response.text


# -- 6b: undeclared personal data is withheld --------------------------------------------------------


def test_undeclared_email_is_withheld_in_structured_content_and_its_text_alike(minimal: ServeProcess) -> None:
    result, wire = call(minimal, "undeclared_person")
    assert result["isError"] is False
    assert result["structuredContent"] == {"name": "Jane", "email": NOTE}, "a string still: the schema holds"
    assert json.loads(result_text(result)) == result["structuredContent"]
    assert app_meta(result) == {"ringfence/undeclared": ["EMAIL"], "ringfence/withheld": ["EMAIL"]}
    assert EMAIL not in wire


def test_declared_email_is_sent_as_it_is(minimal: ServeProcess) -> None:
    result, _ = call(minimal, "declared_person")
    assert result["structuredContent"] == {"name": "Jane", "email": EMAIL}
    assert app_meta(result) == {}


def test_unsafe_opt_out_sends_undeclared_email_flagged_and_start_up_says_so(minimal: ServeProcess) -> None:
    result, _ = call(minimal, "unsafe_person")
    assert result["structuredContent"] == {"name": "Jane", "email": EMAIL}
    assert app_meta(result) == {"ringfence/undeclared": ["EMAIL"]}
    assert ("UNSAFE option enabled: tool 'unsafe_person' sends personal data its returns= does not declare"
            in minimal.logs())
    assert "tool 'undeclared_person' sends" not in minimal.logs(), "only the tool that opted out is named"


def test_undeclared_email_is_withheld_in_text_structured_content_and_meta(minimal: ServeProcess) -> None:
    result, wire = call(minimal, "widget_email")
    assert result_text(result) == f"Write to {NOTE}"
    assert result["structuredContent"] == {"contact": NOTE}
    assert app_meta(result) == {"card": {"mail": NOTE}, "ringfence/undeclared": ["EMAIL"],
                                "ringfence/withheld": ["EMAIL"]}
    assert EMAIL not in wire


def test_a_refusal_message_withholds_undeclared_email_too(minimal: ServeProcess) -> None:
    result, wire = call(minimal, "refuses_with_email")
    assert result["isError"] is True and result_text(result) == f"ask {NOTE} for access"
    assert EMAIL not in wire


@pytest.mark.parametrize(("tool", "kind"), [("strict_person", "e-mail address"), ("short_phone", "phone number")])
def test_a_result_the_note_would_make_malformed_becomes_an_error_result(minimal: ServeProcess, tool: str,
                                                                        kind: str) -> None:
    """``format: email`` and ``maxLength: 20`` refuse the note: an error result, not invalid structured content."""
    result, wire = call(minimal, tool)
    assert result["isError"] is True and "structuredContent" not in result
    assert result_text(result) == (f"The result of {tool} was withheld: ringfence removed undeclared personal data "
                                   f"({kind}) from it, and what is left no longer matches the tool's output schema.")
    assert app_meta(result)["ringfence/withheld"] in (["EMAIL"], ["PHONE"])
    assert EMAIL not in wire and "7946 0958" not in wire
    assert f"tool {tool}: its result no longer matches its output schema once guarded" in minimal.logs()


def test_the_call_record_names_what_was_withheld_never_the_value(minimal: ServeProcess, minimal_data: Path) -> None:
    call(minimal, "undeclared_person", request_id="withheld-record-1")
    shown = ringfence_cli("audit", "show", "--data-dir", str(minimal_data), "--request-id", "withheld-record-1")
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(record["kind"], record["outcome"]) for record in records] == [("tool.call", "ok")]
    assert records[0]["payload"]["output"] == {"undeclared": ["EMAIL"], "withheld": ["EMAIL"]}
    assert EMAIL not in shown.stdout


# -- a confirmation's preview: secrets replaced, personal data exempt from withholding ---------------------


def test_a_confirmation_preview_keeps_the_person_it_names_but_never_a_secret(minimal: ServeProcess) -> None:
    """The preview is what the user confirms: it names the record even for a tool declaring ``returns=[]``;
    a secret in it or in the arguments is replaced like in any result."""
    response = minimal.call_tool("archive_notes", {"note": f"token {API_KEY}"})
    result = tool_result(response)
    assert result["isError"] is True and "archived" not in response.text, "nothing ran"
    assert API_KEY not in response.text and API_KEY[8:] not in response.text
    assert "archive the notes of jane.doe@example.com (their key [API_KEY])" in result_text(result)
    confirmation = app_meta(result)["ringfence/confirmation"]
    assert confirmation["preview"] == "archive the notes of jane.doe@example.com (their key [API_KEY])"
    assert confirmation["arguments"] == {"note": "token [API_KEY]"}
    assert app_meta(result)["ringfence/redacted"] == ["API_KEY"]
    assert NOTE not in response.text and "ringfence/withheld" not in app_meta(result)
    assert "tool archive_notes: its confirmation preview or arguments held secrets; replaced: API_KEY" \
        in minimal.logs()


def test_argument_keys_that_collide_once_their_secrets_are_replaced_still_ask_for_confirmation(
    minimal: ServeProcess,
) -> None:
    """Two keys that differ only by a secret become one once replaced: the arguments go as ``[SECRET]``,
    and the call is still asked about (it was answered as a failed preview)."""
    other_key = API_KEY[:-4] + "Zq7w"
    response = minimal.call_tool("relabel_notes", {"labels": {f"key {API_KEY}": "a", f"key {other_key}": "b"}})
    result = tool_result(response)
    assert API_KEY not in response.text and other_key not in response.text
    confirmation = app_meta(result)["ringfence/confirmation"]
    assert confirmation["preview"] == "relabel 2 notes"
    assert confirmation["arguments"] == "[SECRET]"


# -- 6a: identifier keys leave structuredContent too ---------------------------------------------------


def test_nested_identifier_keys_are_dropped_from_structured_content_and_its_text(minimal: ServeProcess) -> None:
    result, wire = call(minimal, "upstream_page")
    assert result["structuredContent"] == {"items": ["a"], "upstream": {"debug": {}, "status": "ok"}}
    assert json.loads(result_text(result)) == result["structuredContent"], "the text copy loses them too"
    assert app_meta(result) == {"ringfence/dropped": ["structuredContent/upstream/request_id",
                                                      "structuredContent/upstream/debug/traceId"]}
    assert "req-7f3a" not in wire and "4bf92f35" not in wire
    assert "tool upstream_page returned identifiers in its result; dropped:" in minimal.logs()


def test_top_level_identifier_and_host_session_keys_are_dropped(minimal: ServeProcess) -> None:
    result, wire = call(minimal, "top_level_ids")
    assert result["structuredContent"] == {"page": 2}
    assert app_meta(result)["ringfence/dropped"] == ["structuredContent/request_id",
                                                     "structuredContent/x-correlation-id",
                                                     "structuredContent/openai/session"]
    assert "req-1" not in wire and "conv-1" not in wire


def test_identifier_keys_in_json_text_without_structured_content_are_dropped(minimal: ServeProcess) -> None:
    result, wire = call(minimal, "untyped")
    assert "structuredContent" not in result
    assert json.loads(result_text(result)) == {"data": [1, 2], "meta": {}}
    assert app_meta(result) == {"ringfence/dropped": ["content/0/meta/requestId"]}
    assert "req-9" not in wire


def test_an_identifier_the_output_schema_declares_is_the_tool_s_data_and_is_kept(minimal: ServeProcess) -> None:
    result, _ = call(minimal, "declared_trace")
    assert result["structuredContent"] == {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "name": "GET /"}
    assert app_meta(result) == {}
    assert "tool declared_trace declares identifiers in its output schema, so they are sent: trace_id" \
        in minimal.logs()


def test_keys_that_only_mention_a_session_are_data_and_are_kept(minimal: ServeProcess) -> None:
    result, _ = call(minimal, "agenda")
    assert result["structuredContent"] == {"session_title": "Keynote", "sessions": ["Keynote", "Lunch"],
                                           "tracer": "Ada"}
    assert app_meta(result) == {}
