"""The fuzz suite's one way to the server: every request is counted and every answer checked.

An answer fails the suite when it is a 5xx, when it shows a stack trace, a source file or an install
path (:func:`tests.support.http.assert_no_internals`), or when it echoes a secret: one the suite
holds (a real access or refresh token, client secret, authorization code, PKCE verifier, password,
browser session) or one it made up (every made-up secret carries :data:`CANARY`).

Requests leave from many loopback addresses in turn (127.0.1.1, 127.0.1.2, ...), each with its own
keep-alive connection, so per-address budgets (registrations, sign-ins, anonymous calls) turn a
few requests into 429s rather than most of them; a 429 is an answer like any other.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from hypothesis import HealthCheck, Phase, settings

from tests.support.http import assert_no_internals

CANARY = "rfcanary"  # in every made-up secret; seen in an answer, a secret field was echoed
_CANARY_ECHO = re.compile(CANARY + r"[0-9a-z]*")
SOURCE_ADDRESSES = 96
# RINGFENCE_TEST_FUZZ_SCALE=10 sends ten times as many requests (same derandomized start, more of it).
SCALE = float(os.environ.get("RINGFENCE_TEST_FUZZ_SCALE", "1"))
MIN_REQUESTS = 10_000
MIN_TOOL_CALLS = 50  # fuzzed calls that reach each tool past authentication, scopes and budgets
MAX_THROTTLED = 0.25  # of an area's answers that may be 429 before the run says rate limits got in the way


BATCH = 5  # requests per Hypothesis example, sent while the next are drawn (Wire.batch)


def fuzz_settings(requests: int, batch: int = BATCH) -> settings:
    """About ``requests`` requests in examples of ``batch``; reproducible (derandomized, no example
    database); no deadline: a slow answer is not a finding."""
    return settings(
        max_examples=max(1, round(requests * SCALE / batch)),
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


Headers = list[tuple[str, str | bytes]]  # in order, names may repeat; bytes for values httpx would re-encode


@dataclass(frozen=True)
class Request:
    """One generated HTTP request: what :meth:`Wire.send` sends, and what a failure report shows."""

    method: str
    url: str
    headers: Headers = field(default_factory=list)
    content: bytes | None = None
    head_only: bool = False  # an answer that may be an open event stream: read the head only


class Wire:
    """Keep-alive clients, one per source address, taking turns; every answer is checked.

    :meth:`send` sends one request and waits; :meth:`batch` hands requests to one worker thread,
    so that the server answers one while the test draws the next (drawing a request costs about
    as much as answering it), and waits for all of them at the end of the batch.
    """

    def __init__(self, base_url: str, secrets: Iterable[str] = ()) -> None:
        self.base_url = base_url
        self.secrets: set[str] = set(secrets)
        self.sent: Counter[str] = Counter()
        self.answers: Counter[tuple[str, int]] = Counter()  # (area, status) of every answer
        self.clients = [
            httpx.Client(base_url=base_url, timeout=15, follow_redirects=False,
                         transport=httpx.HTTPTransport(local_address=f"127.0.1.{index}"))
            for index in range(1, SOURCE_ADDRESSES + 1)
        ]
        self._turns = itertools.cycle(self.clients)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fuzz-wire")

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def statuses(self, area: str) -> Counter[int]:
        """How often each status answered the requests of ``area``."""
        return Counter({status: count for (where, status), count in self.answers.items() if where == area})

    def send(self, area: str, request: Request) -> httpx.Response:
        """``request`` from the next source address, counted under ``area``; the answer is checked."""
        client = next(self._turns)
        client.cookies.clear()  # each request says for itself which browser session it carries
        self.sent[area] += 1
        built = client.build_request(request.method, request.url, headers=request.headers, content=request.content)
        response = client.send(built, stream=request.head_only)
        if request.head_only:
            response.close()
        self.answers[area, response.status_code] += 1
        self.check(request, response)
        return response

    @contextmanager
    def batch(self) -> Iterator[Callable[..., None]]:
        """``send(area, request, then=None)`` in order on the worker thread; ``then(response)`` runs
        there after the check. The first failure is raised when the batch ends."""
        pending: list[Future[None]] = []

        def send(area: str, request: Request, then: Callable[[httpx.Response], None] | None = None) -> None:
            def run() -> None:
                response = self.send(area, request)
                if then is not None:
                    then(response)

            pending.append(self._worker.submit(run))

        try:
            yield send
        finally:
            wait(pending)
        for future in pending:
            future.result()

    def check(self, request: Request, response: httpx.Response) -> None:
        where = f"{request.method} {request.url} answered {response.status_code}"
        assert response.status_code < 500, f"{where}: {response.text[:500]}"
        headers = "\n".join(f"{name}: {value}" for name, value in response.headers.multi_items())
        text = "" if request.head_only else response.text
        for part in (text, headers):
            echoed = _CANARY_ECHO.search(part)
            assert echoed is None, f"{where}, echoing the made-up secret {echoed.group(0)!r}: {part[:500]}"
            for secret in self.secrets:
                assert secret not in part, f"{where}, echoing a secret ({secret[:6]}...): {part[:500]}"
        if not request.head_only:
            assert_no_internals(response)

    def close(self) -> None:
        self._worker.shutdown()
        for client in self.clients:
            client.close()
