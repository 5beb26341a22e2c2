"""The request-head guard finds where each answer uvicorn's h11 writes ends (ops/protocol.py
``AnswerEnds``), framed as RFC 9112 §6.3 says, however the bytes are split into writes: h11 itself
writes the answers here."""

from __future__ import annotations

import h11
import pytest

from ringfence.ops.protocol import AnswerEnds


def written(method: bytes, response: h11.Response | h11.InformationalResponse, *events: h11.Event) -> list[bytes]:
    """What h11, as uvicorn drives it, writes for ``events`` in answer to a ``method`` request."""
    server = h11.Connection(h11.SERVER)
    server.receive_data(method + b" / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert type(server.next_event()) is h11.Request
    return [data for event in (response, *events) if (data := server.send(event))]


def completed(heads: list[bool], writes: list[bytes], *, split: int | None = None) -> int:
    answers = AnswerEnds()
    answers.heads.extend(heads)
    data = b"".join(writes)
    chunks = [data[i:i + split] for i in range(0, len(data), split)] if split else writes
    return sum(answers.feed(chunk) for chunk in chunks)


def ok(*headers: tuple[bytes, bytes], status: int = 200) -> h11.Response:
    return h11.Response(status_code=status, headers=[(b"x-content-type-options", b"nosniff"), *headers])


ANSWERS = {
    "content-length": (b"POST", [ok((b"Content-Length", b"2")), h11.Data(data=b"{}"), h11.EndOfMessage()]),
    "empty": (b"POST", [ok((b"content-length", b"0")), h11.EndOfMessage()]),
    "chunked": (b"POST", [ok((b"transfer-encoding", b"chunked")), h11.Data(data=b"data: 1\n\n"),
                          h11.Data(data=b"data: 2\n\n"), h11.EndOfMessage()]),
    "head": (b"HEAD", [ok((b"content-length", b"20")), h11.EndOfMessage()]),
    "no-content": (b"POST", [ok(status=204), h11.EndOfMessage()]),
}


@pytest.mark.parametrize("split", [None, 1, 7])
@pytest.mark.parametrize("name", list(ANSWERS))
def test_an_answer_ends_where_h11_ends_it_however_it_is_written(name: str, split: int | None) -> None:
    method, events = ANSWERS[name]
    writes = written(method, *events)
    assert completed([method == b"HEAD"], writes, split=split) == 1
    assert completed([method == b"HEAD"], writes[:-1] or [writes[0][:-1]], split=split) == 0


def test_an_informational_answer_does_not_end_the_request() -> None:
    writes = written(b"POST", h11.InformationalResponse(status_code=100, headers=[]), ok((b"content-length", b"2")),
                     h11.Data(data=b"{}"), h11.EndOfMessage())
    assert completed([False], writes[:1]) == 0
    assert completed([False], writes) == 1


def test_pipelined_answers_are_counted_one_by_one() -> None:
    writes = written(b"POST", *ANSWERS["content-length"][1]) * 2 + written(b"POST", *ANSWERS["chunked"][1])
    assert completed([False, False, False], writes, split=5) == 3


def test_an_answer_to_no_request_cannot_be_followed() -> None:
    with pytest.raises(ValueError):
        completed([], written(b"POST", *ANSWERS["content-length"][1]))
