"""A loopback TCP proxy a test controls, to make PostgreSQL or Redis unreachable without touching them.

:class:`TcpProxy` forwards every connection it accepts to one of its upstreams (round robin, so
with two ringfence instances behind it, it is also a minimal load balancer). ``cut()`` closes
every open connection and stops listening, so new connections are refused, exactly as when the
service went away; ``restore()`` listens again on the same port. It runs its own event loop in a
daemon thread, so it works under synchronous and async tests alike.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Sequence

from tests.support.idp import free_port

CHUNK = 65536


class TcpProxy:
    """``127.0.0.1:port`` forwarding to ``upstreams``; :meth:`cut` and :meth:`restore` the way through."""

    def __init__(self, upstreams: Sequence[tuple[str, int]], *, port: int | None = None) -> None:
        if not upstreams:
            raise ValueError("a proxy needs at least one upstream")
        self.port = port or free_port()
        self._upstreams = itertools.cycle(list(upstreams))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0  # accepted so far: lets a test see that traffic really went through

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def cut(self) -> None:
        """Drop every open connection and refuse new ones (ECONNREFUSED) until :meth:`restore`."""
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._listen())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._run(self._cut())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self, coroutine) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # RST, not a polite FIN: the peer sees the connection die
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted just as the cut happened
            client_writer.transport.abort()
            return
        self.connections += 1
        host, port = next(self._upstreams)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.transport.abort()
            return
        pair = {client_writer, upstream_writer}
        self._writers |= pair
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        finally:
            self._writers -= pair
            for writer in pair:
                writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, asyncio.IncompleteReadError):
            writer.transport.abort()
