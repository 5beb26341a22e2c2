"""The HTTP/1.1 server side: uvicorn's h11 protocol with a deadline for the request head.

uvicorn waits forever for a request head that never completes (a new connection that sends
nothing, or one header byte at a time): one client could hold every connection. Here the head
must arrive within ``header_timeout_seconds`` of the connection opening or the previous answer,
or the connection gets 408 and is closed. A head larger than ``max_header_bytes`` gets 431 (414
when the request line alone is too long) instead of h11's bare 400. A request whose body length
is ambiguous gets 400 and the connection is closed (:class:`FramedConnection`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ringfence.ops.headers import with_security_headers
from ringfence.refusals import HeadersTooLarge, MalformedRequest, Refusal, RequestTimeout, UriTooLong, http_answer

logger = logging.getLogger("ringfence")


class FramedConnection(h11.Connection):
    """h11's connection, refusing a request that carries both ``Content-Length`` and
    ``Transfer-Encoding``.

    h11 would frame its body by ``Transfer-Encoding`` and keep the connection open; a proxy in
    front that framed it by ``Content-Length`` would then see a different next request than we
    do (request smuggling). RFC 9112 §6.3: such a message "ought to be handled as an error"; §6.1:
    the server MUST close the connection after responding. ``refusal`` is set when it raises.
    """

    refusal: Refusal | None = None

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                self.refusal = MalformedRequest("A request may carry Content-Length or Transfer-Encoding, not both "
                                                "(RFC 9112 section 6.1).")
                raise h11.RemoteProtocolError("both Content-Length and Transfer-Encoding")
        return event


class DeadlineH11Protocol(H11Protocol):
    def __init__(self, *args: Any, head_timeout: float, https: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size = self.config.h11_max_incomplete_event_size
        self.conn = FramedConnection(h11.SERVER, *(() if size is None else (size,)))
        self.head_timeout = head_timeout
        self.https = https
        self.max_head_bytes = self.config.h11_max_incomplete_event_size
        self.head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm_head_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a complete request head: the ASGI app has it now
            self.disarm_head_deadline()

    def on_response_complete(self) -> None:
        self.arm_head_deadline()  # for the next request on this connection (disarmed again if pipelined)
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        if self.conn.refusal is not None:  # ambiguous framing: nothing after it on this connection is read
            logger.info("refused a request with both Content-Length and Transfer-Encoding and closed its connection")
            self.refuse(self.conn.refusal)
            return
        pending, _ = self.conn.trailing_data
        if self.max_head_bytes is not None and len(pending) > self.max_head_bytes:
            # h11 gave up on an incomplete head past the limit; say which part is too long.
            if b"\r\n" not in pending:
                self.refuse(UriTooLong("The request line is too long; send large parameters in the request body."))
            else:
                self.refuse(HeadersTooLarge(f"The request head is larger than {self.max_head_bytes} bytes; send "
                                            "fewer or smaller headers."))
            return
        super().send_400_response(msg)

    # The deadline --------------------------------------------------------------------------

    def arm_head_deadline(self) -> None:
        self.disarm_head_deadline()
        self.head_deadline = self.loop.call_later(self.head_timeout, self.head_deadline_passed)

    def disarm_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def head_deadline_passed(self) -> None:
        self.head_deadline = None
        if self.transport.is_closing():
            return
        pending, _ = self.conn.trailing_data
        if not pending:
            self.transport.close()  # an idle connection: nothing to answer
            return
        logger.info("closed a connection whose request head did not arrive within %gs", self.head_timeout)
        self.refuse(RequestTimeout(f"The request head did not arrive within {self.head_timeout:g} seconds."))

    def refuse(self, refusal: Refusal) -> None:
        """Written straight to the socket: h11 cannot answer a request it has not parsed."""
        status, headers, body = http_answer(refusal, "")
        headers = with_security_headers([*headers, (b"content-length", str(len(body)).encode()),
                                         (b"connection", b"close")], https=self.https)
        head = b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())
        head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(head + b"\r\n" + body)
        self.transport.close()


def uvicorn_options(*, header_timeout_seconds: float, max_header_bytes: int, keep_alive_seconds: int,
                    shutdown_timeout_seconds: int, https: bool) -> dict[str, Any]:
    """The ``uvicorn.run`` options that bound connections and requests (``https``: the public URL is)."""
    return {
        "http": functools.partial(DeadlineH11Protocol, head_timeout=header_timeout_seconds, https=https),
        "h11_max_incomplete_event_size": max_header_bytes,
        "timeout_keep_alive": keep_alive_seconds,
        "timeout_graceful_shutdown": shutdown_timeout_seconds,
    }
