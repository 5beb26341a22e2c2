"""The request-head guard's reading of plain requests agrees with h11's, the parser uvicorn frames
requests with (ops/protocol.py ``plain_request``): a head it takes as plain, h11 reads as the same
single request with the same body length, and the connection stays open after it. If the two ever
framed a request differently, the guard would count requests and answers that uvicorn does not
see (RFC 9112 §6.3: the body length decides where the next request starts)."""

from __future__ import annotations

import h11
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ringfence.ops.protocol import plain_request

LIMIT = 16 * 1024

# Heads real clients send: httpx (the Python SDK), Node's fetch (the TypeScript SDK, mcp-remote), curl.
HTTPX = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAccept: application/json, text/event-stream\r\n"
         b"Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nUser-Agent: python-httpx/0.28.1\r\n"
         b"Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln\r\nmcp-protocol-version: 2025-06-18\r\n"
         b"mcp-session-id: 4b1c0c4e8f0e4f0c9d7a7e2f9b8c6d5a\r\nContent-Length: 2\r\nContent-Type: application/json\r\n"
         b"\r\n{}")
NODE = (b"POST /mcp HTTP/1.1\r\nhost: localhost:8000\r\nconnection: keep-alive\r\ncontent-type: application/json\r\n"
        b"accept: application/json, text/event-stream\r\naccept-language: *\r\nsec-fetch-mode: cors\r\n"
        b"user-agent: node\r\naccept-encoding: gzip, deflate\r\ncontent-length: 2\r\n\r\n[]")
CURL = (b"GET /.well-known/oauth-protected-resource HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\n"
        b"Accept: */*\r\n\r\n")


def h11_framing(data: bytes) -> tuple[int, bool, bool]:
    """What h11 reads at the front of ``data``: where the first request ends, whether it is a HEAD,
    and whether the connection stays open after it. Raises if h11 does not read one whole request."""
    reader = h11.Connection(h11.SERVER, max_incomplete_event_size=LIMIT)
    reader.receive_data(data)
    request = reader.next_event()
    assert type(request) is h11.Request
    while type(event := reader.next_event()) is h11.Data:
        pass
    assert type(event) is h11.EndOfMessage
    return len(data) - len(reader.trailing_data[0]), request.method == b"HEAD", reader.their_state is h11.DONE


@pytest.mark.parametrize("head", [HTTPX, NODE, CURL], ids=["httpx", "node", "curl"])
def test_what_real_clients_send_is_plain_and_framed_as_h11_frames_it(head: bytes) -> None:
    pipelined = head + head
    first = plain_request(pipelined, 0, LIMIT)
    assert first is not None
    assert first == h11_framing(pipelined)[:2] == (len(head), False)
    assert plain_request(pipelined, first[0], LIMIT) == (2 * len(head), False)


@pytest.mark.parametrize("data", [
    b"POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\n{}",
    b"POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n{}",  # the body is not all here yet
    b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\r\nHost: a\nX-Bare: lf\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Tab:\tvalue\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",  # to h11, any CONNECT proposes to switch protocols
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # the head is not complete
], ids=["content-length-and-transfer-encoding", "chunked", "two-content-lengths", "signed-content-length",
        "body-incomplete", "no-host", "two-hosts", "http-1.0", "connection-close", "upgrade", "expect",
        "obs-fold", "bare-lf", "tab", "space-before-colon", "leading-crlf", "absolute-form", "connect",
        "head-incomplete"])
def test_anything_else_is_left_to_h11(data: bytes) -> None:
    assert plain_request(data, 0, LIMIT) is None


def test_a_head_longer_than_the_limit_is_left_to_h11() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 200 + b"\r\n\r\n"
    assert plain_request(head, 0, len(head)) is not None
    assert plain_request(head, 0, len(head) - 1) is None


# Heads near the edge of plain: mostly the pieces plain requests are made of, sometimes a look-alike.
def mostly(usual: list[bytes], odd: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.integers(0, 3).flatmap(lambda pick: st.sampled_from(usual if pick else odd))


METHODS = mostly([b"GET", b"POST", b"HEAD", b"DELETE"], [b"CONNECT", b"get", b"M-SEARCH", b"P@ST", b"", b"GET "])
TARGETS = mostly([b"/", b"/mcp", b"/a?b=c&d", b"/%00"],
                 [b"/a b", b"*", b"http://a/", b"/\x7f", b"/\xc3\xa9", b"", b"/\t"])
VERSIONS = mostly([b"HTTP/1.1"], [b"HTTP/1.0", b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 ", b"HTTP/1.10"])
NAMES = mostly([b"Host", b"host", b"Content-Length", b"content-length", b"Connection", b"X-A", b"Accept"],
               [b"Transfer-Encoding", b"Upgrade", b"Expect", b"X A", b"", b"X\x00", b"Content-Length ", b" Host",
                b"Content_Length", b"host\t", b"HOST", b"Content-length"])
VALUES = st.one_of(
    mostly([b"0", b"2", b"10", b"keep-alive", b"a", b"a  b", b"127.0.0.1:8000", b"application/json, text/plain"],
           [b"02", b"-1", b"+2", b"2, 2", b"1e1", b"Keep-Alive", b"close", b"upgrade", b"chunked", b"100-continue",
            b"", b" ", b" 2 ", b"\t2", b"\x80", b"\x01", b"\x7f", b"a\rb", b"a\nb", b"9" * 20, b"keep-alive, close"]),
    st.binary(max_size=6),
)
COLONS = mostly([b": ", b":"], [b":  ", b" :", b":\t"])
TAILS = mostly([b""], [b" ", b"\t", b"  "])
SEPARATORS = mostly([b"\r\n"], [b"\n", b"\r", b"\r\n ", b"\r\n\t"])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    line = draw(METHODS) + b" " + draw(TARGETS) + b" " + draw(VERSIONS)
    field = st.tuples(NAMES, COLONS, VALUES, TAILS, SEPARATORS)
    fields = [(b"Host", b": ", b"a", b"", b"\r\n")] * draw(st.integers(0, 3).map(lambda n: min(n, 1)))
    fields += draw(st.lists(field, max_size=5))
    head = line + b"\r\n" + b"".join(name + colon + value + tail + end for name, colon, value, tail, end in fields)
    return head + b"\r\n" + draw(st.binary(max_size=12)) + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n"]))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
@example(HTTPX)
@example(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 02\r\n\r\n{}x")
def test_a_plain_request_is_framed_as_h11_frames_it(data: bytes) -> None:
    plain = plain_request(data, 0, LIMIT)
    if plain is None:
        return
    end, is_head, stays_open = h11_framing(data)
    assert plain == (end, is_head)
    assert stays_open
