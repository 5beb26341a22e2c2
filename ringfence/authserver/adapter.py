"""Starlette ↔ Authlib: builds Authlib's request objects from a Starlette request and back.

Authlib ships only Flask and Django integrations; this is the small adapter the MCP stack needs.
Every parameter is checked once here: bodies are size-capped, must be UTF-8, a repeated
parameter is refused (RFC 6749 §3.1: parameters MUST NOT be included more than once), and each
known OAuth parameter must keep to its grammar (:mod:`.parameters`); JSON bodies must be I-JSON
(:mod:`.strict_json`). A refusal never echoes the input.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import InvalidRequestError, JsonPayload, JsonRequest, OAuth2Payload, OAuth2Request
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ringfence.authserver import strict_json
from ringfence.authserver.oauth import OAuthResponse
from ringfence.authserver.parameters import check_parameters, repeated_parameter
from ringfence.config import MAX_FORM_BYTES

MAX_BODY_BYTES = MAX_FORM_BYTES  # ops/limits.py refuses larger bodies with 413 before they get here


class FormPayload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """An authorization or token request whose known parameters keep to their grammar; ``resource``
    is set once RFC 8707 validation accepts it."""

    def __init__(self, method: str, uri: str, headers: Any, query: list[tuple[str, str]],
                 form: list[tuple[str, str]]) -> None:
        check_parameters(query + form)
        super().__init__(method, uri, headers=headers)
        self.payload = FormPayload(query + form)
        self._args = dict(query)
        self._form = dict(form)
        self.resource: str | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class JsonBody(JsonPayload):
    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def data(self) -> Any:
        return self._data


async def read_limited(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise InvalidRequestError("The request body is too large.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise InvalidRequestError("The request body is too large.")
    return body


def parse_parameters(raw: str) -> list[tuple[str, str]]:
    try:
        items = parse_qsl(raw, keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except ValueError:
        raise InvalidRequestError("Too many parameters.") from None
    seen: set[str] = set()
    for key, _ in items:
        if key in seen:
            raise repeated_parameter(key)
        seen.add(key)
    return items


async def oauth_request(request: Request, public_origin: str) -> StarletteOAuth2Request:
    """Authlib's request for a form-encoded endpoint; the URI uses the public origin, not the Host header."""
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        body = await read_limited(request)
        try:
            form = parse_parameters(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequestError("The request body is not UTF-8.") from None
    query = parse_parameters(request.url.query)
    if {key for key, _ in query} & {key for key, _ in form}:
        raise InvalidRequestError("A parameter is sent both in the URL and in the body.")
    uri = public_origin + request.url.path
    return StarletteOAuth2Request(request.method, uri, request.headers, query, form)


async def json_request(request: Request, public_origin: str) -> JsonRequest:
    body = await read_limited(request)
    try:
        data = strict_json.decode(body)
    except strict_json.JsonRefused as refused:
        raise InvalidRequestError(str(refused)) from None
    json_req = JsonRequest(request.method, public_origin + request.url.path, request.headers)
    json_req.payload = JsonBody(data)
    return json_req


def to_starlette(response: OAuthResponse) -> Response:
    headers = {key: value for key, value in response.headers if key.lower() != "content-type"}
    if response.location:
        return RedirectResponse(response.location, status_code=302, headers=headers)
    headers.setdefault("Cache-Control", "no-store")  # RFC 6749 §5.1
    return JSONResponse(response.body if isinstance(response.body, dict) else {}, response.status, headers=headers)
