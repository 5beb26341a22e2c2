"""Small apps with widgets for the lint tests (``ringfence lint tests.review.widget_apps:NAME``)."""

from __future__ import annotations

from ringfence import App, Scope

NOTES_READ = Scope("notes:read", "See your notes")
NOTES_WRITE = Scope("notes:write", "Change and delete your notes", implies=["notes:read"])

# A page with the near misses of every widget rule: it must lint clean.
BENIGN_HTML = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Notes</title>
<link rel="canonical" href="https://elsewhere.example/notes">
<link rel="stylesheet" href="https://cdn.notes.example.com/notes.css">
<style>/* url(https://commented.example/x.png) */ .logo { background: url("logo.png"); }</style>
<script type="application/json" id="config">{"help": "alert(1) is not code here"}</script>
</head>
<body>
<a href="https://notes.example.com/help" target="_blank" rel="noopener noreferrer">Help</a>
<img src="data:image/png;base64,AAAA" alt=""><img src="https://img.notes.example.com/a.png" alt="">
<button id="confirm" class="confirmation">Confirm</button>
<script>
(function () {
  "use strict";
  // alert("debugging") and eval(code) in a comment are not calls
  var confirmation = { confirm(value) { return value; } };  // a method named confirm, defined
  function prompt(text) { return text; }  // the page's own prompt(), defined
  var hint = "press confirm() to eval(x) the navigator.clipboard";  // words in a string
  var password = document.getElementById("password").value;  // a variable, not a literal secret
  document.getElementById("confirm").addEventListener("click", function () {
    confirmation.confirm(hint);
    window.ringfence.callTool("list_notes", {});
    fetch("https://api.notes.example.com/v1/notes").then(function () { setTimeout(render, 10); });
    window.open("https://notes.example.com/help", "_blank", "noopener");
  });
  function render() {}
})();
</script>
</body>
</html>
"""

BROKEN_HTML = """<!doctype html><html><body>
<script>alert("saved"); fetch("https://tracker.other.example/hit");</script>
</body></html>
"""


def notes_app(html: str = BENIGN_HTML, **widget: object) -> App:
    """An app whose ``list_notes`` shows widget ``notes``, with the CSP the benign page needs."""
    app = App("notes", scopes=[NOTES_READ, NOTES_WRITE], privacy_policy_url="https://notes.example.com/privacy")
    declaration = {"html": html, "description": "Shows your notes.", "domain": "https://notes.example.com",
                   "connect_domains": ["https://api.notes.example.com"],
                   "resource_domains": ["https://*.notes.example.com"], "calls": ["list_notes"],
                   "shows": ["user_content"], **widget}
    app.widget("notes", **declaration)  # type: ignore[arg-type]

    @app.tool(effect="read", scopes=["notes:read"], returns=["user_content"], widget="notes")
    async def list_notes() -> list[str]:
        """List the titles of your notes, newest first."""
        return ["Shopping", "Ideas"]

    @app.tool(effect="destructive", scopes=["notes:write"])
    async def delete_note(note_id: int) -> str:
        """Delete one of your notes; the user confirms each deletion."""
        return "deleted"

    return app


benign = notes_app()
broken = notes_app(BROKEN_HTML)
