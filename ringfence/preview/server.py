"""The preview's two origins, served by one uvicorn on two loopback sockets.

- the host page, ``http://127.0.0.1:PORT``: ``/`` and its script, ``/api/tools``, ``/api/call`` (a real
  ``tools/call`` on the server being previewed), ``/api/violations`` and ``/api/csp-report``;
- the widget origin, ``http://localhost:WIDGET_PORT`` (another host and port, so cross-origin):
  ``/widget?form=mcp-apps|openai&uri=ui://...``, the widget document read with ``resources/read`` and
  served under the CSP its server declared (:mod:`ringfence.preview.csp`).

The API answers only requests from the host page's own origin (the token stays on this side), and
each origin answers only under its own Host header (no DNS rebinding).
"""

from __future__ import annotations

import json
import re
import socket
import time
from importlib import resources
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ringfence.preview.client import McpClient, McpError
from ringfence.preview.csp import declared_csp, host_policy, widget_policy

FORMS = ("mcp-apps", "openai")
MIME_BY_FORM = {"mcp-apps": "text/html;profile=mcp-app", "openai": "text/html+skybridge"}
MAX_CALL_BYTES = 1024 * 1024
MAX_REPORT_BYTES = 64 * 1024
MAX_VIOLATIONS = 500
_HEAD_TAG = re.compile(r"<head(?=[\s>/])[^>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<html(?=[\s>/])[^>]*>", re.IGNORECASE)
COMMON_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def asset(name: str) -> str:
    return resources.files("ringfence.preview").joinpath("assets", name).read_text(encoding="utf-8")


def widget_uri(tool: dict[str, Any], form: str) -> str | None:
    """The ``ui://`` resource a tool shows its result in, in the given form."""
    meta = tool.get("_meta") if isinstance(tool.get("_meta"), dict) else {}
    if form == "openai":
        uri = meta.get("openai/outputTemplate")
    else:
        ui = meta.get("ui") if isinstance(meta.get("ui"), dict) else {}
        uri = ui.get("resourceUri")
    return uri if isinstance(uri, str) and uri.startswith("ui://") else None


def widget_may_call(tool: dict[str, Any], form: str) -> bool:
    """Whether a host lets a widget call this tool: ``ui.visibility`` has "app" (legacy: widgetAccessible)."""
    meta = tool.get("_meta") if isinstance(tool.get("_meta"), dict) else {}
    if form == "openai":
        return meta.get("openai/widgetAccessible") is True
    ui = meta.get("ui") if isinstance(meta.get("ui"), dict) else {}
    visibility = ui.get("visibility", ["model", "app"])  # MCP Apps: both when unsaid
    return isinstance(visibility, list) and "app" in visibility


def with_shim(html: str, shim: str) -> str:
    """``html`` with the ``window.openai`` shim as the very first element of ``<head>``, before any script."""
    script = f"<script>\n{shim}</script>\n"
    for tag in (_HEAD_TAG, _HTML_TAG):  # "<head" alone would also match "<header>", deep in <body>
        found = tag.search(html)
        if found is not None:
            return html[:found.end()] + "\n" + script + html[found.end():]
    return script + html


def violation_from(report: Any) -> dict[str, Any] | None:
    """The fields of one CSP report (``report-uri`` form, or one Reporting API entry) worth showing."""
    if isinstance(report, dict) and isinstance(report.get("csp-report"), dict):
        body = report["csp-report"]
        fields = ("document-uri", "effective-directive", "violated-directive", "blocked-uri")
    elif isinstance(report, dict) and isinstance(report.get("body"), dict):
        body = report["body"]
        fields = ("documentURL", "effectiveDirective", "effectiveDirective", "blockedURL")
    else:
        return None
    document, effective, violated, blocked = (str(body.get(field, ""))[:2000] for field in fields)
    return {"time": time.time(), "document": document, "directive": effective or violated.split(" ")[0],
            "blocked": blocked}


class Preview:
    """The state both origins share: the MCP client, the tools last listed, the CSP violations reported."""

    def __init__(self, client: McpClient, *, port: int, widget_port: int) -> None:
        self.client = client
        self.host_origin = f"http://127.0.0.1:{port}"
        self.widget_origin = f"http://localhost:{widget_port}"
        self.report_uri = f"{self.host_origin}/api/csp-report"
        self.tools: dict[str, dict[str, Any]] = {}
        self.violations: list[dict[str, Any]] = []
        self.hosts = {port: f"127.0.0.1:{port}", widget_port: f"localhost:{widget_port}"}
        self.apps = {port: self.host_app(), widget_port: self.widget_app()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Each socket's requests to its own app, under its own Host header only."""
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        port = (scope.get("server") or ("", 0))[1]
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        app = self.apps.get(port)
        if app is None or host != self.hosts[port]:
            await Response("wrong host", status_code=421, media_type="text/plain")(scope, receive, send)
            return
        await app(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # The host page ----------------------------------------------------------------------------

    def host_app(self) -> Starlette:
        return Starlette(routes=[
            Route("/", self.host_page),
            Route("/host.js", self.static("host.js", "text/javascript")),
            Route("/host.css", self.static("host.css", "text/css")),
            Route("/api/tools", self.list_tools),
            Route("/api/call", self.call, methods=["POST"]),
            Route("/api/violations", self.list_violations),
            Route("/api/csp-report", self.csp_report, methods=["POST"]),
        ])

    def static(self, name: str, media_type: str) -> Any:
        async def serve(_: Request) -> Response:
            return Response(asset(name), media_type=media_type, headers=COMMON_HEADERS)
        return serve

    async def host_page(self, _: Request) -> Response:
        headers = {**COMMON_HEADERS, "content-security-policy": host_policy(self.widget_origin)}
        return Response(asset("host.html"), media_type="text/html", headers=headers)

    def from_host_page(self, request: Request) -> bool:
        """A POST must carry the host page's Origin; a GET may carry no other (nor come from another site)."""
        origin = request.headers.get("origin")
        if request.method == "POST":
            return origin == self.host_origin
        site = request.headers.get("sec-fetch-site")
        return origin in (None, self.host_origin) and site in (None, "same-origin", "none")

    async def list_tools(self, request: Request) -> Response:
        if not self.from_host_page(request):
            return JSONResponse({"error": "not from the host page"}, status_code=403)
        try:
            tools = await self.client.list_tools()
        except McpError as exc:
            return JSONResponse({"error": str(exc)}, status_code=502)
        self.tools = {str(tool.get("name")): tool for tool in tools}
        return JSONResponse({"tools": tools, "widgetOrigin": self.widget_origin}, headers=COMMON_HEADERS)

    async def call(self, request: Request) -> Response:
        """``{"name", "arguments", "form", "byWidget"}`` → ``{"result"}`` or ``{"error"}``."""
        if not self.from_host_page(request):
            return JSONResponse({"error": "not from the host page"}, status_code=403)
        body = await request.body()
        try:
            call = json.loads(body) if len(body) <= MAX_CALL_BYTES else None
        except ValueError:
            call = None
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or \
                not isinstance(call.get("arguments", {}), dict) or call.get("form") not in FORMS:
            return JSONResponse({"error": "expected {name, arguments, form}"}, status_code=400)
        name, form = call["name"], call["form"]
        if call.get("byWidget") is True:
            tool = self.tools.get(name)
            if tool is None or not widget_may_call(tool, form):
                return JSONResponse({"error": f"the host does not let widgets call {name!r} (not visible to the app)"},
                                    status_code=403)
        try:
            result = await self.client.call_tool(name, call.get("arguments", {}), form=form)
        except McpError as exc:
            return JSONResponse({"error": str(exc)}, status_code=502)
        return JSONResponse({"result": result}, headers=COMMON_HEADERS)

    async def list_violations(self, request: Request) -> Response:
        if not self.from_host_page(request):
            return JSONResponse({"error": "not from the host page"}, status_code=403)
        return JSONResponse({"violations": self.violations}, headers=COMMON_HEADERS)

    async def csp_report(self, request: Request) -> Response:
        """Reports the browser sends for the widget documents (from their opaque origin: no Origin check)."""
        body = await request.body()
        if len(body) > MAX_REPORT_BYTES:
            return Response(status_code=413)
        try:
            reports = json.loads(body)
        except ValueError:
            return Response(status_code=400)
        for report in reports if isinstance(reports, list) else [reports]:
            violation = violation_from(report)
            if violation is not None and len(self.violations) < MAX_VIOLATIONS:
                self.violations.append(violation)
        return Response(status_code=204)

    # The widget origin ------------------------------------------------------------------------

    def widget_app(self) -> Starlette:
        return Starlette(routes=[Route("/widget", self.widget)])

    async def widget(self, request: Request) -> Response:
        """A widget document named by one of the listed tools, under its declared CSP."""
        form, uri = request.query_params.get("form"), request.query_params.get("uri")
        if form not in FORMS or not any(widget_uri(tool, form) == uri for tool in self.tools.values()):
            return Response("no such widget", status_code=404, media_type="text/plain")
        try:
            content = await self.client.read_resource(uri)  # type: ignore[arg-type]
        except McpError as exc:
            return Response(str(exc), status_code=502, media_type="text/plain")
        mime = str(content.get("mimeType", ""))
        if mime.replace(" ", "") != MIME_BY_FORM[form]:
            return Response(f"{uri} is {mime!r}, not {MIME_BY_FORM[form]}", status_code=502, media_type="text/plain")
        html = content["text"]
        if form == "openai":
            html = with_shim(html, asset("openai_shim.js"))
        policy = widget_policy(declared_csp(content.get("_meta"), form), self.report_uri)
        return Response(html, media_type="text/html",
                        headers={**COMMON_HEADERS, "content-security-policy": policy})


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def serve(mcp_url: str, token: str | None, *, port: int, widget_port: int, announce: Any = print) -> None:
    """Serve both origins until interrupted; ``announce`` is given the host page's URL once bound."""
    host_socket, widget_socket = bind(port), bind(widget_port)
    port, widget_port = host_socket.getsockname()[1], widget_socket.getsockname()[1]
    preview = Preview(McpClient(mcp_url, token), port=port, widget_port=widget_port)
    announce(f"{preview.host_origin}/")
    config = uvicorn.Config(preview, log_level="warning", lifespan="on", server_header=False, proxy_headers=False)
    uvicorn.Server(config).run(sockets=[host_socket, widget_socket])
