"""Request framing over a raw socket against a real `ringfence serve`: a request whose body length is
ambiguous is refused and its connection closed, so nothing after it on the connection is read as
a request (RFC 9112 §6.1, request smuggling)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import served_trusting
from tests.support.idp import TestIdentityProvider
from tests.support.serve import ServeProcess

HANG_GUARD = 30  # a read that takes longer than this means the server never answered or closed


@pytest.fixture(scope="module")
def server(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with served_trusting(idp, tmp_path_factory.mktemp("framing")) as process:
        yield process
    assert "Traceback" not in process.logs()


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; everything the server sends until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD) as connection:
        connection.sendall(data)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def statuses(answer: bytes) -> list[int]:
    """The status of each response in ``answer``, read one after the other by their Content-Length."""
    found = []
    while answer:
        head, _, rest = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        found.append(int(lines[0].split(b" ", 2)[1]))
        length = next(int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
        answer = rest[length:]
    return found


def second_request(port: int) -> bytes:
    """A pipelined request that answers 200 if it is ever read as one, and asks to close after it."""
    return (b"GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Connection: close\r\n\r\n" % port)


def smuggling_attempt(port: int, *, transfer_encoding: bytes = b"chunked") -> bytes:
    body = b"0\r\n\r\n"
    return (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: %s\r\n\r\n%s" % (port, len(body), transfer_encoding, body)
            + second_request(port))


@pytest.mark.parametrize("transfer_encoding", [b"chunked", b"Chunked"])
def test_content_length_with_transfer_encoding_gets_400_and_the_connection_closed(
    server: ServeProcess, transfer_encoding: bytes,
) -> None:
    """RFC 9112 §6.1: a request with both Content-Length and Transfer-Encoding is refused with 400 and
    the connection closed; the pipelined request after it is never processed."""
    answer = exchange(server.port, smuggling_attempt(server.port, transfer_encoding=transfer_encoding))
    assert statuses(answer) == [400], answer  # one answer: the second request was not read
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\nconnection: close\r\n" in head.lower() + b"\r\n"
    assert json.loads(body)["error"] == "invalid_request"
    assert b"Content-Length" in body and b"Transfer-Encoding" in body


def test_the_same_requests_framed_once_are_both_served(server: ServeProcess) -> None:
    """The control: a chunked request alone is served, and so is the request pipelined after it."""
    body = b"0\r\n\r\n"
    chunked = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n%s" % (server.port, body))
    answer = exchange(server.port, chunked + second_request(server.port))
    assert statuses(answer)[-1] == 200 and len(statuses(answer)) == 2, answer


# Pipelining and keep-alive through the head guard (ops/protocol.py) ------------------------------


def get(port: int, path: str, *, method: bytes = b"GET", close: bool = False) -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (method, path.encode(), port,
                                                             b"Connection: close\r\n" if close else b"")


METADATA = "/.well-known/oauth-protected-resource/mcp"


def test_pipelined_requests_are_all_answered_in_order(server: ServeProcess) -> None:
    """RFC 9112 §9.3.2: a server MAY process pipelined requests and MUST answer them in order."""
    answer = exchange(server.port, get(server.port, METADATA) + get(server.port, "/no-such-page")
                      + get(server.port, METADATA, close=True))
    assert statuses(answer) == [200, 404, 200], answer


def test_an_answer_to_head_has_no_body_and_the_next_request_is_still_read(server: ServeProcess) -> None:
    """RFC 9110 §9.3.2: the answer to HEAD carries no body, whatever its Content-Length says."""
    answer = exchange(server.port, get(server.port, METADATA, method=b"HEAD") + get(server.port, METADATA, close=True))
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and b"content-length:" in first.lower()
    assert statuses(rest) == [200], answer


def test_ambiguous_framing_after_a_pipelined_request_is_refused_after_its_answer(server: ServeProcess) -> None:
    """RFC 9112 §6.1: the request before it is answered whole, then 400 and close; nothing after it is read."""
    answer = exchange(server.port, get(server.port, METADATA) + smuggling_attempt(server.port))
    assert statuses(answer) == [200, 400], answer
    assert answer.lower().count(b"\r\nconnection: close\r\n") == 1


def test_a_request_that_is_not_http_gets_a_json_400_with_security_headers(server: ServeProcess) -> None:
    """A header line without a colon (RFC 9112 §5): 400 invalid_request, nosniff, closed."""
    answer = exchange(server.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nno colon here\r\n\r\n" % server.port
                      + second_request(server.port))
    assert statuses(answer) == [400], answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"x-content-type-options: nosniff" in head and b"connection: close" in head
    assert json.loads(body)["error"] == "invalid_request"
