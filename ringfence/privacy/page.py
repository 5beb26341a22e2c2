"""The privacy disclosure as a page: the document ``ringfence privacy`` writes, served at ``/privacy``.

The Markdown is rendered with raw HTML disabled, so every character of the author's text (scope and
record descriptions) reaches the page escaped; links are only those Markdown makes, and markdown-it
refuses ``javascript:`` and other unsafe schemes. The page has the sign-in pages' look, CSP and
security headers (authserver/pages.py).
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from ringfence.authserver.pages import render_page

# CommonMark with tables; no raw HTML, no typographic replacements: the text stays as the author wrote it.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def disclosure_html(markdown: str) -> Markup:
    """The disclosure's Markdown as HTML that holds no markup of the author's."""
    return Markup(_MARKDOWN.render(markdown))  # noqa: S704 (html=False: the renderer escaped all text)


def privacy_page(markdown: str, app_name: str, *, account: bool):  # type: ignore[no-untyped-def]
    """A Starlette endpoint answering the (prerendered) disclosure page; ``account``: link the account page,
    where a signed-in person downloads or deletes their data."""
    document = disclosure_html(markdown)

    async def endpoint(_request: Request) -> Response:
        return render_page("privacy.html", app_name=app_name, document=document, account=account)

    return endpoint
