"""Widgets that reach out, for the browser tests: served with ``ringfence serve tests/ui/widget_app.py``.

The ports they reach come from the environment when this module is imported:
``WIDGET_TEST_SITE_PORT`` (a plain http site on 127.0.0.1 that no widget declares) and
``WIDGET_TEST_FRAME_PORT`` (an https site on localhost that ``framed_site`` declares).
"""

from __future__ import annotations

import os

from ringfence import App, Scope

SITE = f"http://127.0.0.1:{int(os.environ.get('WIDGET_TEST_SITE_PORT', '9'))}"
FRAME_SITE = f"https://localhost:{int(os.environ.get('WIDGET_TEST_FRAME_PORT', '9'))}"

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><p id="state">loading</p>{body}</body></html>"""

app = App("probes", scopes=[Scope("probes:read", "Run the probes")])

app.widget(
    "fetch-probe",
    html=PAGE.format(title="Fetch probe", body=f"""<script>
fetch("{SITE}/probe").then(function () {{ document.getElementById("state").textContent = "reached"; }},
                           function () {{ document.getElementById("state").textContent = "blocked"; }});
</script>"""),
    description="Tries to fetch from a site it did not declare.",
)
app.widget(
    "undeclared-frame",
    html=PAGE.format(title="Undeclared frame", body=f'<iframe src="{SITE}/framed" title="undeclared"></iframe>'),
    description="Tries to frame a site it did not declare.",
)
app.widget(
    "declared-frame",
    html=PAGE.format(title="Declared frame", body=f'<iframe src="{FRAME_SITE}/framed" title="declared"></iframe>'),
    description="Frames the one site it declared.",
    frame_domains=[FRAME_SITE],
    unsafe_allow_frames=True,
)


@app.tool(effect="read", returns=["public"], widget="fetch-probe")
async def probe() -> str:
    """Show the widget that tries an undeclared fetch."""
    return "probing"


@app.tool(effect="read", returns=["public"], widget="undeclared-frame")
async def frame_undeclared() -> str:
    """Show the widget that frames an undeclared site."""
    return "framing"


@app.tool(effect="read", returns=["public"], widget="declared-frame")
async def frame_declared() -> str:
    """Show the widget that frames its declared site."""
    return "framing"
