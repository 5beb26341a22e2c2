"""Alert webhook: signed JSON POSTs from a bounded queue, in the background, never on a request's time.

Each delivery is tried ``1 + retries`` times, each attempt within ``timeout`` seconds overall,
with exponential backoff between attempts. When the queue is full the alert is dropped, counted
and logged: a flood of alerts must not grow memory or delay requests.

Signature (when a secret is set): ``Ringfence-Signature: sha256=<hex>``, the HMAC-SHA256 with
the secret of ``<Ringfence-Timestamp>.<body>``; receivers recompute it and reject old timestamps.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

logger = logging.getLogger("ringfence.alerts")

QUEUE_SIZE = 100
BACKOFF_SECONDS = 0.5
SIGNATURE_HEADER = "Ringfence-Signature"
TIMESTAMP_HEADER = "Ringfence-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of the signature header for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSender:
    """Delivers alert documents to one URL; ``submit`` never blocks, ``close`` stops the worker.

    ``count(outcome)`` is told ``delivered``, ``failed`` (every attempt failed) or ``dropped``;
    ``attempt(result)`` each attempt's ``2xx``/``4xx``/``5xx``/``timeout``/``error``.
    """

    def __init__(self, url: str, secret: str | None, *, timeout: float, retries: int,
                 count: Callable[[str], None] = lambda outcome: None,
                 attempt: Callable[[str], None] = lambda result: None,
                 queue_size: int = QUEUE_SIZE, backoff: float = BACKOFF_SECONDS) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.retries = retries
        self.count = count
        self.attempt = attempt
        self.backoff = backoff
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self._client: httpx.AsyncClient | None = None
        self._worker: asyncio.Task[None] | None = None

    def submit(self, document: dict[str, Any]) -> bool:
        """Queue one alert for delivery (starting the worker on first use); False when dropped."""
        if self._worker is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
            self._worker = asyncio.get_running_loop().create_task(self._deliver_forever())
        try:
            self._queue.put_nowait(document)
        except asyncio.QueueFull:
            self.count("dropped")
            logger.warning("alert webhook queue is full; dropped the %s alert", document.get("detector"))
            return False
        return True

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _deliver_forever(self) -> None:
        while True:
            document = await self._queue.get()
            try:
                delivered = await self.deliver(document)
            except Exception:  # a bug here must not stop later deliveries
                logger.exception("alert webhook delivery failed")
                delivered = False
            self.count("delivered" if delivered else "failed")
            if not delivered:
                logger.warning("alert webhook: gave up delivering the %s alert after %d attempts",
                               document.get("detector"), self.retries + 1)

    async def deliver(self, document: dict[str, Any]) -> bool:
        """POST one document, retrying; True once an attempt got a 2xx answer."""
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            timestamp = str(int(time.time()))
            headers = {"content-type": "application/json", TIMESTAMP_HEADER: timestamp}
            if self.secret is not None:
                headers[SIGNATURE_HEADER] = signature(self.secret, timestamp, body)
            assert self._client is not None
            try:
                async with asyncio.timeout(self.timeout):  # the whole attempt, not each read
                    response = await self._client.post(self.url, content=body, headers=headers)
            except (TimeoutError, httpx.TimeoutException):
                self.attempt("timeout")
                continue
            except httpx.HTTPError:
                self.attempt("error")
                continue
            self.attempt(f"{response.status_code // 100}xx")
            if response.is_success:
                return True
        return False
