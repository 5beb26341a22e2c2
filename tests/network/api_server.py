"""A stand-in for the API a tool calls: https on 127.0.0.1 (a certificate for ``localhost`` from a CA made
for the test, tests/support/tls.py), answering at fixed paths and counting the requests to each."""

from __future__ import annotations

import asyncio
from collections import Counter

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.idp import free_port
from tests.support.tls import TlsFiles, serve_https

BIG = 2 * 1024 * 1024  # bytes the /big answers send: twice the client's default cap


class ApiServer:
    __test__ = False

    def __init__(self, tls: TlsFiles) -> None:
        self.tls = tls
        self.port = free_port()
        self.hits: Counter[str] = Counter()
        self.streamed: Counter[str] = Counter()  # bytes /big/streamed managed to send
        self._server: uvicorn.Server | None = None

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    async def _answer(self, request: Request) -> Response:
        path = request.url.path
        self.hits[f"{request.method} {path}"] += 1
        count = self.hits[f"{request.method} {path}"]
        if path == "/hello":
            return JSONResponse({"hello": "world", "method": request.method})
        if path == "/redirect/home":
            return RedirectResponse("/hello", status_code=302)
        if path == "/redirect/away":
            return RedirectResponse("https://elsewhere.example/steal", status_code=302)
        if path == "/redirect/plain":
            return RedirectResponse(f"http://localhost:{self.port}/hello", status_code=307)
        if path == "/redirect/loop":
            return RedirectResponse("/redirect/loop", status_code=302)
        if path == "/flaky":  # unavailable twice, then fine
            if count <= 2:
                return JSONResponse({"error": "try later"}, status_code=503)
            return JSONResponse({"hello": "again"})
        if path == "/unavailable/long":
            return JSONResponse({"error": "down"}, status_code=503, headers={"retry-after": "3600"})
        if path == "/big/streamed":
            return StreamingResponse(self._chunks(path), media_type="application/octet-stream")
        if path == "/big/declared":
            return Response(b"x" * BIG, media_type="application/octet-stream")
        if path == "/headers":  # what arrived, names lowercased
            return JSONResponse({name.decode("latin-1"): value.decode("latin-1")
                                 for name, value in request.headers.raw})
        if path == "/redirect/same-origin":
            return RedirectResponse("/headers", status_code=307)
        if path == "/redirect/other-origin":  # the same server under another name: another origin
            return RedirectResponse(f"https://127.0.0.1:{self.port}/headers", status_code=307)
        if path == "/unavailable/odd":  # a 503 whose Retry-After is the query's v=, as bytes
            response = JSONResponse({"error": "down"}, status_code=503)
            value = request.query_params["v"]
            try:
                raw = value.encode("latin-1")
            except UnicodeEncodeError:
                raw = value.encode("utf-8")
            response.raw_headers.append((b"retry-after", raw))
            return response
        if path == "/compressed":
            return Response(b"\x1f\x8b" + b"\0" * 20, headers={"content-encoding": "gzip"})
        return JSONResponse({"error": "not found"}, status_code=404)

    async def _chunks(self, path: str):  # type: ignore[no-untyped-def]
        for _ in range(BIG // 16384):
            self.streamed[path] += 16384
            yield b"x" * 16384
            await asyncio.sleep(0)

    def start(self) -> ApiServer:
        app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST", "PUT", "DELETE"])])
        self._server = serve_https(app, self.port, self.tls)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
