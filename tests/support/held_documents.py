"""A client metadata document server on 127.0.0.1 that holds every request until told to answer.

Stands in for slow documents (an attacker's, or a struggling host's): a test sees how many fetches
are waiting on it, does what it wants meanwhile, then releases them all. Each document is valid for
the URL it was fetched from (``client_id`` = scheme, Host header and path), with one loopback
redirect URI.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LONGEST_HOLD = 30.0  # a forgotten release cannot hang a test run


class HeldDocuments:
    __test__ = False

    def __init__(self, *, client_name: str, redirect_uri: str) -> None:
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._waiting = 0
        documents = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with documents._lock:
                    documents._waiting += 1
                try:
                    documents._released.wait(LONGEST_HOLD)
                finally:
                    with documents._lock:
                        documents._waiting -= 1
                body = json.dumps({"client_id": f"http://{self.headers['host']}{self.path}",
                                   "client_name": client_name, "redirect_uris": [redirect_uri]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the fetcher gave up meanwhile

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def waiting(self) -> int:
        """Requests received and not answered yet."""
        with self._lock:
            return self._waiting

    def wait_until_waiting(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.waiting < count:
            assert time.monotonic() < deadline, f"{self.waiting} requests arrived, expected {count}"
            time.sleep(0.01)

    def release(self) -> None:
        """Answer every held request, and every later one at once."""
        self._released.set()

    def start(self) -> HeldDocuments:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
