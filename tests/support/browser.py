"""A real browser for the tests: Debian's headless Chromium driven by Playwright, and a small local site.

Playwright comes from PyPI; its own browser download (``playwright install``) is never used: the
tests drive the system Chromium (Debian package ``chromium``) through ``executable_path``. When either
is missing the tests fail with a message saying what to install; they never skip.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.serve import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("RINGFENCE_TEST_CHROMIUM", "/usr/bin/chromium")
# Headless, no sandbox (CI runs as root), and nothing that would try to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
INSTALL_HINT = (
    "the browser tests need Playwright from PyPI (pip install 'playwright>=1.65,<2') and Debian's "
    "Chromium (apt-get install -y chromium); never `playwright install`"
)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless system Chromium under Playwright; fails the test (never skips) when it cannot start."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright is not installed ({exc}): {INSTALL_HINT}", pytrace=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    playwright = sync_playwright().start()
    try:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                                 timeout=60_000)
        except Error as exc:
            pytest.fail(f"Chromium at {CHROMIUM} did not start under Playwright: {exc}\n{INSTALL_HINT}",
                        pytrace=False)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG kept under test-artifacts/ (git-ignored) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# WCAG 2.x contrast, measured in the page: every visible text run against the background it is painted
# on (the nearest ancestor with an opaque background colour) must reach AA, 4.5:1 or 3:1 for large text
# (24px, or 18.66px bold); the borders of text fields and the focus ring of the focused element must reach
# 3:1 against what surrounds them (1.4.11 non-text contrast). Returns what falls short.
_CONTRAST_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x); return (hi + 0.05) / (lo + 0.05);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c[3] >= 0.99) return c;
    }
    return parse(getComputedStyle(document.documentElement).backgroundColor) || [255, 255, 255, 1];
  };
  const shortfall = (what, fg, bg, minimum) => {
    const r = ratio(fg, bg);
    return r < minimum ? [{what, ratio: Math.round(r * 100) / 100, minimum,
                           color: `rgb(${fg.slice(0, 3)})`, background: `rgb(${bg.slice(0, 3)})`}] : [];
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement; const text = node.textContent.trim();
    if (!text || !el || el.closest('[hidden], script, style')) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    low.push(...shortfall(text.slice(0, 60), parse(style.color), background(el),
                          size >= 24 || (bold && size >= 18.66) ? 3 : 4.5));
  }
  for (const field of document.querySelectorAll('input:not([type=hidden]), textarea, select')) {
    low.push(...shortfall(`border of #${field.id || field.name}`, parse(getComputedStyle(field).borderTopColor),
                          background(field.parentElement), 3));
  }
  const focused = document.activeElement;
  if (focused && focused !== document.body && focused.matches(':focus-visible')) {
    const style = getComputedStyle(focused);
    if (style.outlineStyle === 'none' || parseFloat(style.outlineWidth) < 2) {
      low.push({what: `no visible focus ring on ${focused.outerHTML.slice(0, 60)}`});
    } else {
      low.push(...shortfall('focus ring', parse(style.outlineColor), background(focused.parentElement), 3));
    }
  }
  return low;
}
"""


def low_contrast(page: Page) -> list[dict[str, Any]]:
    """What on the page falls short of WCAG AA contrast (empty when everything passes)."""
    return page.evaluate(_CONTRAST_JS)


# A second local origin ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    path: str
    query: dict[str, list[str]]


class LocalSite:
    """An HTTP server on 127.0.0.1 (its own origin): serves set pages and records every GET.

    It stands in for an OAuth client's loopback redirect URI (RFC 8252 §7.3), so a browser really
    lands on the callback, and for a third-party page that tries to frame ringfence's pages.
    """

    __test__ = False

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.visits: list[Visit] = []
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with site._lock:
                    site.visits.append(Visit(parts.path, parse_qs(parts.query)))
                body = site.pages.get(parts.path, "<!doctype html><title>Callback</title><h1>Done</h1>").encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LocalSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def visits_to(self, path: str) -> list[Visit]:
        with self._lock:
            return [visit for visit in self.visits if visit.path == path]
