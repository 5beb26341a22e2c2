"""Small apps with widgets, served by the tests of this package (``ringfence serve tests/widgets/apps.py:NAME``)."""

from __future__ import annotations

from ringfence import App, Scope, to_widget

WIDGET_HTML = """<!doctype html><html><head><title>Notes</title></head>
<body><ul id="notes"></ul></body></html>"""

NOTES = Scope("notes:read", "See your notes")


def notes_app(**widget: object) -> App:
    """An app whose ``list_notes`` tool shows widget ``notes``, declared with ``widget``'s options."""
    app = App("notes", scopes=[NOTES])
    app.widget("notes", **{"html": WIDGET_HTML, "description": "Shows your notes.", **widget})  # type: ignore[arg-type]

    @app.tool(effect="read", scopes=["notes:read"], returns=["user_content"], widget="notes")
    async def list_notes() -> list[str]:
        """List the titles of your notes, newest first."""
        to_widget(layout="compact", secret="api_key=sk_live_51Hx9f8h3k2j4h5g6f7d8s9a0")
        return ["Shopping", "Ideas"]

    @app.tool(effect="read", returns=["public"])
    async def about() -> str:
        """Say what this notes app does."""
        return "A notes app."

    return app


# Served by the tests: one that frames a site it opted into, and three that must not start.
framing = notes_app(shows=["user_content"], domain="https://notes.example.com", connect_domains=["https://api.example.com"],
                    resource_domains=["https://*.cdn.example.com"], redirect_domains=["https://example.com"],
                    base_uri_domains=["https://notes.example.com"], frame_domains=["https://maps.example.com"],
                    unsafe_allow_frames=True, calls=["list_notes"])
shows_too_little = notes_app()  # list_notes returns user_content; the widget may be shown public data only
calls_a_tool_that_does_not_exist = notes_app(shows=["user_content"], calls=["delete_everything"])

undeclared = App("notes", scopes=[NOTES])


@undeclared.tool(effect="read", scopes=["notes:read"], widget="notes")
async def list_notes() -> list[str]:
    """List the titles of your notes, newest first."""
    return []
