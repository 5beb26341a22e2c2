"""Prometheus metrics on ``/metrics``: counters move with calls and refusals; only allowed scrapers see them.

By default ``/metrics`` answers only a loopback TCP peer (anyone else gets a 404, so it is not
advertised); with ``RINGFENCE_METRICS_TOKEN`` every scraper must present it. Labels are bounded:
declared tool names or ``(unknown)``, never a principal or an address.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ringfence.config import Settings
from ringfence.events import SecurityEvent
from ringfence.monitor.metrics import OTHER, UNKNOWN_TOOL, BoundedLabel, Metrics
from ringfence.monitor.scrape import MetricsEndpoint
from ringfence.ops.hardening import HostOriginCheck
from tests.monitor.support import monitored_contacts, sample, scrape
from tests.support.idp import new_subject

METRICS_TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture(scope="module")
def server(idp, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    server = monitored_contacts(tmp, idp)
    yield server
    server.stop()


def test_tool_calls_refusals_and_auth_failures_are_counted_by_tool_and_outcome(server, idp):
    subject = new_subject()
    reader = idp.token(server.mcp_url, sub=subject, scope="contacts:read")
    writer = idp.token(server.mcp_url, sub=subject, scope="contacts:write")
    nobody = idp.token(server.mcp_url, sub=subject, scope="")
    assert server.call_tool("app_info").status_code == 200
    assert server.call_tool("search_contacts", {"query": "a"}, token=reader).status_code == 200
    assert server.call_tool("search_contacts", {"query": "a"}, token=nobody).status_code == 403
    assert server.call_tool("search_contacts", {"query": "a"}, token="forged.token.value").status_code == 401
    assert server.call_tool("delete_contact", {"contact_id": 1}, token=writer).status_code == 200

    samples = scrape(server)
    assert sample(samples, "ringfence_tool_calls_total", tool="app_info", outcome="ok") == 1
    assert sample(samples, "ringfence_tool_calls_total", tool="search_contacts", outcome="ok") == 1
    assert sample(samples, "ringfence_tool_calls_total", tool="delete_contact", outcome="confirmation_required") == 1
    assert sample(samples, "ringfence_tool_call_duration_seconds_count", tool="search_contacts", outcome="ok") == 1
    assert sample(samples, "ringfence_scope_refusals_total", tool="search_contacts", outcome="insufficient_scope") == 1
    assert sample(samples, "ringfence_auth_failures_total", stage="resource", outcome="invalid_token") == 1
    assert sample(samples, "ringfence_http_requests_total", route="/mcp", method="POST", status="4xx") == 2
    assert sample(samples, "ringfence_http_requests_total", route="/mcp", method="POST", status="2xx") == 3
    labels = {value for _, label_set in samples for _, value in label_set}
    assert subject not in labels and "127.0.0.1" not in labels  # never a principal or an address

    assert server.call_tool("search_contacts", {"query": "b"}, token=reader).status_code == 200
    after = scrape(server)
    assert sample(after, "ringfence_tool_calls_total", tool="search_contacts", outcome="ok") == 2
    assert sample(after, "ringfence_http_requests_total", route="/metrics", method="GET", status="2xx") >= 1


def test_metrics_of_an_unknown_path_use_no_raw_path_as_a_label(server):
    assert httpx.get(server.base_url + "/no/such/path/for-alice@example.com", timeout=10).status_code == 404
    labels = {value for _, label_set in scrape(server) for _, value in label_set}
    assert not any("alice" in value for value in labels)
    assert OTHER in labels


def test_metrics_are_served_to_a_loopback_peer_in_the_prometheus_format(server):
    response = httpx.get(server.base_url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"ringfence_tool_calls", "ringfence_alerts", "ringfence_http_requests"} <= names
    assert httpx.post(server.base_url + "/metrics", timeout=10).status_code == 404  # GET only


def test_with_a_metrics_token_every_scraper_must_present_it_even_on_loopback(idp, tmp_path):
    server = monitored_contacts(tmp_path, idp, metrics_token=METRICS_TOKEN)
    try:
        url = server.base_url + "/metrics"
        assert httpx.get(url, timeout=10).status_code == 404
        assert httpx.get(url, headers={"authorization": "Bearer wrong-token-0123456789"}, timeout=10).status_code == 404
        assert httpx.get(url, headers={"authorization": f"Basic {METRICS_TOKEN}"}, timeout=10).status_code == 404
        allowed = httpx.get(url, headers={"authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
        assert allowed.status_code == 200 and "ringfence_tool_calls" in allowed.text
    finally:
        server.stop()


def test_metrics_can_be_turned_off(idp, tmp_path):
    server = monitored_contacts(tmp_path, idp, "--no-metrics")
    try:
        assert httpx.get(server.base_url + "/metrics", timeout=10).status_code == 404
        assert "metrics at /metrics" not in server.logs()
    finally:
        server.stop()


# The peer check, at the ASGI level: a remote peer cannot be made from this machine's loopback.

async def asgi_get(app, path: str, *, client: tuple[str, int] | None, host: str = "127.0.0.1:8000",
                   headers: list[tuple[bytes, bytes]] = ()) -> int:
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", host.encode()), *headers], "client": client, "server": ("127.0.0.1", 8000),
             "scheme": "http", "http_version": "1.1", "root_path": ""}
    answer: list[int] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            answer.append(message["status"])

    await app(scope, receive, send)
    return answer[0]


async def not_found(scope, receive, send):
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def endpoint(app=not_found, **overrides) -> MetricsEndpoint:
    settings = Settings(**overrides)
    return MetricsEndpoint(app, Metrics(["search"]), token=settings.metrics_token,
                           hosts=settings.allowed_host_headers(), base_url=settings.base_url)


@pytest.mark.anyio
@pytest.mark.parametrize("peer", ["203.0.113.9", "10.0.0.5", "::ffff:203.0.113.9", "2001:db8::1", "not-an-ip"])
async def test_a_non_loopback_peer_gets_404_from_metrics(peer):
    assert await asgi_get(endpoint(), "/metrics", client=(peer, 50000)) == 404


@pytest.mark.anyio
@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1"])
async def test_a_loopback_peer_gets_metrics(peer):
    assert await asgi_get(endpoint(), "/metrics", client=(peer, 50000)) == 200


@pytest.mark.anyio
async def test_an_unknown_peer_gets_404_from_metrics():
    assert await asgi_get(endpoint(), "/metrics", client=None) == 404


@pytest.mark.anyio
@pytest.mark.parametrize("name", [b"x-forwarded-for", b"forwarded", b"x-real-ip"])
async def test_a_request_relayed_by_a_local_proxy_is_not_treated_as_loopback(name):
    relayed = [(name, b"203.0.113.9")]
    assert await asgi_get(endpoint(), "/metrics", client=("127.0.0.1", 50000), headers=relayed) == 404


@pytest.mark.anyio
async def test_a_remote_peer_with_the_metrics_token_gets_metrics():
    token = [(b"authorization", f"Bearer {METRICS_TOKEN}".encode())]
    assert await asgi_get(endpoint(metrics_token=METRICS_TOKEN), "/metrics", client=("203.0.113.9", 1),
                          host="mcp.example.com", headers=token) == 404  # Host not ours: see the next test
    public = endpoint(metrics_token=METRICS_TOKEN, public_url="https://mcp.example.com")
    assert await asgi_get(public, "/metrics", client=("203.0.113.9", 1), host="mcp.example.com", headers=token) == 200
    assert await asgi_get(public, "/metrics", client=("203.0.113.9", 1), host="mcp.example.com") == 404


@pytest.mark.anyio
async def test_a_loopback_scrape_passes_the_host_check_whatever_the_public_url():
    """Scraping at 127.0.0.1:PORT (with the token) works behind a public name; a rebinding Host is still 421."""
    settings = Settings(public_url="https://mcp.example.com", metrics_token=METRICS_TOKEN)
    token = [(b"authorization", f"Bearer {METRICS_TOKEN}".encode())]
    checked = HostOriginCheck(not_found, hosts=settings.allowed_host_headers(),
                              origins=settings.allowed_origin_headers(), metadata_url=settings.resource_metadata_url)
    app = endpoint(checked, public_url="https://mcp.example.com", metrics_token=METRICS_TOKEN)
    assert await asgi_get(app, "/metrics", client=("127.0.0.1", 1), host="127.0.0.1:8000", headers=token) == 200
    assert await asgi_get(app, "/metrics", client=("127.0.0.1", 1), host="[::1]:8000", headers=token) == 200
    assert await asgi_get(app, "/metrics", client=("127.0.0.1", 1), host="attacker.example:8000",
                          headers=token) == 421
    assert await asgi_get(app, "/mcp", client=("127.0.0.1", 1), host="127.0.0.1:8000") == 421


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["mcp.example.com", "127.0.0.1:8000"])
async def test_behind_a_public_name_a_loopback_peer_without_the_token_gets_404(host):
    """A reverse proxy on this machine makes every visitor a loopback peer, and may add no forwarding
    header: with a public URL that is not loopback, only the metrics token opens /metrics."""
    public = endpoint(public_url="https://mcp.example.com")
    assert await asgi_get(public, "/metrics", client=("127.0.0.1", 1), host=host) == 404


def test_tool_labels_are_the_declared_tools_and_other_values_are_bounded():
    metrics = Metrics(["search"])
    metrics.observe(SecurityEvent("tool.call", "ok", tool="search", details={}))
    metrics.observe(SecurityEvent("tool.call", "ok", tool="made_up_tool", details={}))
    assert metrics.tool_calls.labels(UNKNOWN_TOOL, "ok")._value.get() == 1
    label = BoundedLabel(limit=3)
    assert [label(f"v{n}") for n in range(5)] == ["v0", "v1", "v2", OTHER, OTHER]
    assert label("v1") == "v1" and len(BoundedLabel()("x" * 1000)) == 64
