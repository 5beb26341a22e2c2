"""The HTTP/1.1 server side: uvicorn's h11 protocol behind a guard that bounds the request head.

uvicorn waits forever for a request head that never completes (a new connection that sends
nothing, or one header byte at a time): one client could hold every connection. Here the head
must arrive within ``header_timeout_seconds`` of the connection opening or the previous answer,
or the connection gets 408 and is closed. A head larger than ``max_header_bytes`` gets 431 (414
when the request line alone is too long) instead of h11's bare 400, and a request whose body
length is ambiguous (RFC 9112 §6.1) or that is not HTTP/1.1 at all gets 400; each of these
answers carries the security headers and closes the connection.

Design: :class:`HeadGuard` is a plain :class:`asyncio.Protocol` placed between the socket and
uvicorn's h11 protocol through uvicorn's public ``http=`` option. It follows the connection with
h11, the parser uvicorn's h11 protocol uses, at the same size limit, as requests arrive, except
for requests that arrive whole and in the plain form nearly every client sends
(:func:`plain_request`: one regular expression over the head, which a property test holds to
h11's framing), and :class:`AnswerEnds` finds where each answer uvicorn writes ends (a cheap
reader: h11 wrote them). Bytes reach uvicorn only once the guard has read them without
objection, so uvicorn never sees a request the guard refused; a refusal is written by the guard
itself, at once when no answer is under way, otherwise right after that answer's last byte.
uvicorn's protocol is created with the arguments uvicorn gives, unchanged, and is used only
through asyncio's Protocol and Transport interfaces (it writes to a :class:`GuardedTransport`):
none of its internals is read, overridden or relied upon, so uvicorn's fixes can be taken as they
come. The price is the guard's own read of each request: about 25 µs for an MCP tool call's POST
in plain form (95 µs when h11 read it a second time), and about 10 µs for each of its answer's
four writes to follow (``bench/calls/call_steps.py --served``, with the probes' own cost).

Not chosen: subclassing uvicorn's protocol (what this module did up to uvicorn 0.54: it replaced
private methods and attributes, so every uvicorn release could break it silently); an ASGI
middleware (it runs only once the head is complete and framed: too late for the head deadline and
limits, and after h11 has already chosen Transfer-Encoding over Content-Length); an ASGI server of
our own on h11 (keep-alive, pipelining, flow control, graceful shutdown, lifespan and the access
log to rewrite and keep right: more code than the guard). uvicorn 0.55 still has no deadline for
the request head of its own (only ``timeout_keep_alive`` between requests, cancelled by the first
byte of the next head).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections import deque
from http import HTTPStatus
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol  # the protocol `uvicorn --http h11` names

from ringfence.ops.headers import with_security_headers
from ringfence.refusals import HeadersTooLarge, MalformedRequest, Refusal, RequestTimeout, UriTooLong, http_answer

logger = logging.getLogger("ringfence")


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.description)
        self.refusal = refusal


class BrokenBody(Exception):
    pass


class HeadGuard(asyncio.Protocol):
    """One connection: the head deadline and limits and the framing check, in front of uvicorn's
    h11 protocol (``uvicorn_arguments``: what uvicorn passes to its protocol class, handed on)."""

    def __init__(self, *, head_timeout: float, max_head_bytes: int, https: bool, **uvicorn_arguments: Any) -> None:
        self.inner = H11Protocol(**uvicorn_arguments)
        self.head_timeout = head_timeout
        self.max_head_bytes = max_head_bytes
        self.https = https
        self.requests: h11.Connection | None = self.request_reader()
        self.answers: AnswerEnds | None = AnswerEnds()
        self.in_flight = 0  # requests handed on and not completely answered
        self.received = 0  # bytes received on the connection
        self.handed_on = 0  # of which given to uvicorn
        self.request_end = 0  # where the last complete request ended
        self.pending: Refusal | None = None  # to answer once the answer under way is complete
        self.refused = False
        self.deadline: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport = None  # type: ignore[assignment]

    # asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream server's connection
        self.inner.connection_made(GuardedTransport(self.transport, self))
        self.settle()

    def data_received(self, data: bytes) -> None:
        if self.refused or self.pending is not None:
            return  # nothing after a refused request is read
        if self.requests is None:  # the client asked to close after its last request, or uvicorn closes
            return
        self.received += len(data)
        try:
            rest = self.read_plain_requests(data, self.requests)
            if rest:
                self.requests.receive_data(rest)
                self.read_requests(self.requests)
        except Refused as refused:
            self.hand_on(data, self.request_end)
            self.refuse_when_answered(refused.refusal)
            return
        except BrokenBody:
            # The head was accepted and handed on: a body h11 cannot read is uvicorn's to answer (400 and
            # close), from the same bytes.
            self.requests = self.answers = None
            self.disarm()
            self.hand_on(data, self.received)
            return
        # After a request that asked to close, nothing more is read.
        self.hand_on(data, self.received if self.requests is not None else self.request_end)
        self.settle()

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # Requests --------------------------------------------------------------------------------

    def read_plain_requests(self, data: bytes, requests: h11.Connection) -> bytes:
        """Takes the complete plain requests (:func:`plain_request`) at the front of ``data`` when no
        request is partly read; returns the bytes left for h11."""
        if requests.their_state is not h11.IDLE or requests.trailing_data[0]:
            return data
        at, start = 0, self.received - len(data)
        while (plain := plain_request(data, at, self.max_head_bytes)) is not None:
            at, is_head = plain
            self.in_flight += 1
            if self.answers is not None:
                self.answers.heads.append(is_head)
            self.request_end = start + at
        return data[at:] if at else data

    def read_requests(self, requests: h11.Connection) -> None:
        while True:
            in_body = requests.their_state is h11.SEND_BODY
            try:
                event = requests.next_event()
            except h11.RemoteProtocolError as exc:
                if in_body:
                    raise BrokenBody from None
                raise Refused(self.unreadable(requests, exc)) from None
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            kind = type(event)
            if kind is h11.Request:
                names = {name for name, _ in event.headers}
                if b"content-length" in names and b"transfer-encoding" in names:
                    # RFC 9112 §6.3: such a message "ought to be handled as an error"; §6.1: the server MUST
                    # close the connection after responding (a proxy in front framing it by Content-Length would
                    # see another next request than we do: request smuggling).
                    logger.info("refused a request with both Content-Length and Transfer-Encoding and closed "
                                "its connection")
                    raise Refused(MalformedRequest("A request may carry Content-Length or Transfer-Encoding, not "
                                                   "both (RFC 9112 section 6.1)."))
                self.in_flight += 1
                if self.answers is not None:
                    self.answers.heads.append(event.method == b"HEAD")
            elif kind is h11.EndOfMessage:
                rest = requests.trailing_data[0]
                self.request_end = self.received - len(rest)
                if requests.their_state is h11.MUST_CLOSE:  # the client asked to close after this request
                    self.requests = None
                    return
                # The next request on a fresh reader (cheaper than answering this one in h11 to start a cycle).
                requests = self.requests = self.request_reader()
                if rest:
                    requests.receive_data(rest)
            elif kind is h11.ConnectionClosed:
                return

    def request_reader(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_head_bytes)

    def unreadable(self, requests: h11.Connection, exc: h11.RemoteProtocolError) -> Refusal:
        if exc.error_status_hint != 431:
            logger.info("refused a request that is not valid HTTP/1.1 and closed its connection")
            return MalformedRequest("The request is not valid HTTP/1.1.")
        # The head passed the limit while incomplete: say which part is too long.
        if b"\r\n" not in requests.trailing_data[0]:
            return UriTooLong("The request line is too long; send large parameters in the request body.")
        return HeadersTooLarge(f"The request head is larger than {self.max_head_bytes} bytes; send fewer or "
                               "smaller headers.")

    def hand_on(self, data: bytes, upto: int) -> None:
        """Gives uvicorn the bytes of ``data`` before stream position ``upto`` it does not have yet."""
        start = self.received - len(data)
        if upto > self.handed_on:
            self.inner.data_received(data[max(self.handed_on - start, 0):upto - start])
            self.handed_on = upto

    # Answers ---------------------------------------------------------------------------------

    def answer_written(self, data: bytes) -> None:
        answers = self.answers
        if answers is None:
            return
        try:
            self.in_flight -= answers.feed(data)
        except ValueError:
            # Not an answer we can follow: fail closed, after what was written (close() flushes it).
            logger.warning("closed a connection whose answers could not be followed")
            self.answers = self.requests = None
            self.disarm()
            self.transport.close()
            return
        if self.pending is not None and self.in_flight == 0:
            self.refuse(self.pending)
            return
        self.settle()

    def handed_over(self) -> None:
        """uvicorn gave the connection to another protocol (a WebSocket upgrade): nothing left to guard."""
        self.requests = self.answers = None
        self.disarm()

    # Refusals --------------------------------------------------------------------------------

    def refuse_when_answered(self, refusal: Refusal) -> None:
        self.disarm()
        if self.in_flight == 0:
            self.refuse(refusal)
        else:
            self.pending = refusal

    def refuse(self, refusal: Refusal) -> None:
        """Written straight to the socket: uvicorn never saw this request."""
        self.refused = True
        self.requests = self.answers = None
        self.disarm()
        if self.transport.is_closing():
            return  # uvicorn closes it already (its last answer said so)
        status, headers, body = http_answer(refusal, "")
        headers = with_security_headers([*headers, (b"content-length", str(len(body)).encode()),
                                         (b"connection", b"close")], https=self.https)
        head = b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())
        head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(head + b"\r\n" + body)
        self.transport.close()

    # The deadline ----------------------------------------------------------------------------

    def settle(self) -> None:
        """The deadline runs while a head is awaited and no answer is under way."""
        requests = self.requests
        if requests is not None and self.in_flight == 0 and requests.their_state is h11.IDLE:
            if self.deadline is None:
                self.deadline = asyncio.get_running_loop().call_later(self.head_timeout, self.deadline_passed)
        elif self.deadline is not None:
            self.disarm()

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def deadline_passed(self) -> None:
        self.deadline = None
        if self.transport.is_closing() or self.requests is None:
            return
        if not self.requests.trailing_data[0]:
            self.transport.close()  # an idle connection: nothing to answer
            return
        logger.info("closed a connection whose request head did not arrive within %gs", self.head_timeout)
        self.refuse(RequestTimeout(f"The request head did not arrive within {self.head_timeout:g} seconds."))


# A request head in the form nearly every client sends (see plain_request): an HTTP/1.1 request line with an
# origin-form target, then header lines of a name, a colon and visible ASCII with inner spaces, each ending in CRLF.
PLAIN_HEAD = re.compile(rb"[A-Z]{1,16} /[\x21-\x7e]* HTTP/1\.1\r\n"
                        rb"(?:[A-Za-z0-9-]{1,64}: *(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)? *\r\n)*\r\n")
# The fields that frame a request or change what follows it, in a lower-cased plain head.
FRAMING_FIELDS = re.compile(rb"\r\n(host|content-length|transfer-encoding|connection|upgrade|expect): *([^\r]*)")
CONTENT_LENGTH = re.compile(rb"[0-9]{1,18}")


def plain_request(data: bytes, at: int, max_head_bytes: int) -> tuple[int, bool] | None:
    """Where the request at ``data[at:]`` ends, and whether it is a HEAD, when it is complete in ``data``
    and plain; ``None`` for anything else, which h11 reads.

    Plain: a head of at most ``max_head_bytes`` matching ``PLAIN_HEAD``, not a CONNECT (h11 takes any
    CONNECT for a proposal to switch protocols), with exactly one Host, at most one Content-Length (of
    digits), no Transfer-Encoding, Upgrade or Expect, and Connection absent or ``keep-alive``. h11 reads
    every such head as one request framed by its Content-Length (0 without one), after which the
    connection stays open (tests/ops/test_plain_requests.py checks this against h11 itself, on
    generated heads), so the guard and uvicorn's h11 frame them alike, and the guard need not read them
    with h11 a second time (about half its cost on an MCP call). A longer head goes to h11 as before,
    which holds it to the same limit while it is incomplete.
    """
    head_end = data.find(b"\r\n\r\n", at, at + max_head_bytes)
    if head_end < 0:
        return None
    head = data[at : head_end + 4]
    if PLAIN_HEAD.fullmatch(head) is None or head.startswith(b"CONNECT "):
        return None
    hosts, lengths = 0, []
    for name, value in FRAMING_FIELDS.findall(head.lower()):
        value = value.rstrip(b" ")
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            lengths.append(value)
        elif name != b"connection" or value != b"keep-alive":
            return None
    if hosts != 1 or len(lengths) > 1 or (lengths and CONTENT_LENGTH.fullmatch(lengths[0]) is None):
        return None
    end = head_end + 4 + (int(lengths[0]) if lengths else 0)
    if end > len(data):
        return None  # the body is not all here: h11 follows it
    return end, head.startswith(b"HEAD ")


# The fields that frame an answer, in its lower-cased head (as h11 writes them: no space before the colon).
ANSWER_FRAMING = re.compile(rb"\r\n(transfer-encoding|content-length):([^\r]*)")


class AnswerEnds:
    """Counts the answers uvicorn finishes writing, from the bytes it writes.

    h11 serialized them (uvicorn's h11 protocol writes nothing else), so they are well-formed: a
    head that ends with an empty line, then a body framed as RFC 9112 §6.3 says: none after HEAD or
    for 1xx, 204 and 304, else chunked, else Content-Length, else until the connection closes.
    Anything else raises ``ValueError``.
    """

    def __init__(self) -> None:
        self.heads: deque[bool] = deque()  # per request not answered yet: was it HEAD?
        self.buffer = b""
        self.body: int | None = None  # bytes still to come of a Content-Length body, or of a chunk and its CRLF
        self.chunked = False
        self.trailer = False  # after the last chunk: trailer lines until an empty one
        self.until_close = False

    def feed(self, data: bytes) -> int:
        """How many answers ``data`` completes."""
        buffer = self.buffer + data if self.buffer else data
        done = 0
        while buffer and not self.until_close:
            if self.body is not None:
                if len(buffer) < self.body:
                    self.body -= len(buffer)
                    buffer = b""
                    break
                buffer, self.body = buffer[self.body:], None
                done += not self.chunked
            elif self.chunked:
                end = buffer.find(b"\r\n")
                if end < 0:
                    break
                line, buffer = buffer[:end], buffer[end + 2:]
                if self.trailer:
                    if not line:
                        self.chunked = self.trailer = False
                        done += 1
                elif (size := int(line.split(b";", 1)[0], 16)) == 0:
                    self.trailer = True
                else:
                    self.body = size + 2
            else:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                head, buffer = buffer[:end], buffer[end + 4:]
                done += self.read_head(head)
        self.buffer = buffer
        return done

    def read_head(self, head: bytes) -> int:
        """1 when the answer is complete with its head, else 0 (its body follows)."""
        status = int(head[9:12])
        if status < 200:
            return 0  # e.g. 100 Continue: the answer itself follows
        if not self.heads:
            raise ValueError("an answer to no request")
        if self.heads.popleft() or status in (204, 304):
            return 1
        fields = dict(ANSWER_FRAMING.findall(head.lower()))
        if b"transfer-encoding" in fields:
            self.chunked = True
        elif b"content-length" in fields:
            length = int(fields[b"content-length"])
            if length == 0:
                return 1
            self.body = length
        else:
            self.until_close = True
        return 0


class GuardedTransport(asyncio.Transport):
    """The socket as uvicorn's protocol sees it: what it writes is read by the guard on the way out."""

    def __init__(self, transport: asyncio.Transport, guard: HeadGuard) -> None:
        super().__init__()
        self.transport = transport
        self.guard = guard

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.guard.refused:
            return  # the guard answered and closed: nothing may follow its answer
        self.transport.write(data)
        self.guard.answer_written(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.guard.handed_over()
        self.transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.transport.get_protocol()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def write_eof(self) -> None:
        self.transport.write_eof()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()


def uvicorn_options(*, header_timeout_seconds: float, max_header_bytes: int, keep_alive_seconds: int,
                    shutdown_timeout_seconds: int, https: bool) -> dict[str, Any]:
    """The ``uvicorn.run`` options that bound connections and requests (``https``: the public URL is)."""
    return {
        "http": functools.partial(HeadGuard, head_timeout=header_timeout_seconds, max_head_bytes=max_header_bytes,
                                  https=https),
        "h11_max_incomplete_event_size": max_header_bytes,  # the same limit in uvicorn's own reader
        "timeout_keep_alive": keep_alive_seconds,
        "timeout_graceful_shutdown": shutdown_timeout_seconds,
    }
