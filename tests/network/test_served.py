"""A real ``ringfence serve`` of a tool that calls an API: start-up lists the hosts each tool may reach
(and a declared loopback host as UNSAFE), the request succeeds over TLS trusted through ``SSL_CERT_FILE``,
and its log line, through the redacting pipeline, has the query's names but no value and no header."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import served_trusting
from tests.network.api_server import ApiServer
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.serve import ServeProcess

API_APP = '''
from ringfence import App, network

app = App("weather")


@app.tool(effect="read", open_world=True, reaches=["localhost:{port}", "api.weather.example"])
async def forecast(city: str) -> dict[str, object]:
    """The forecast for a city."""
    response = await network.get("https://localhost:{port}/hello", params={{"city": city, "secret": "abc123zz"}},
                                 headers={{"x-api-key": "key-9f8e7d6c"}})
    return {{"status": response.status_code, "answer": response.json()}}


@app.tool(effect="read")
async def offline() -> str:
    """Reaches nothing."""
    return "offline"
'''


@pytest.fixture(scope="module")
def weather(api: ApiServer, idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ServeProcess]:
    folder: Path = tmp_path_factory.mktemp("weather")
    (folder / "weather_app.py").write_text(API_APP.format(port=api.port))
    with served_trusting(idp, folder, target=str(folder / "weather_app.py"),
                         env={"SSL_CERT_FILE": str(api.tls.ca)}) as server:
        yield server


def test_start_up_lists_the_hosts_each_tool_may_reach_and_a_loopback_host_as_unsafe(weather: ServeProcess,
                                                                                     api: ApiServer) -> None:
    logs = weather.logs()
    assert f"tool forecast may reach api.weather.example, localhost:{api.port}" in logs
    assert (f"UNSAFE option enabled: tool forecast reaches localhost:{api.port}, a loopback host: its requests "
            "can reach services on this machine") in logs
    assert "tool offline may reach" not in logs


def test_tool_request_succeeds_and_is_logged_without_values(weather: ServeProcess, api: ApiServer) -> None:
    result = tool_result(weather.call_tool("forecast", {"city": "Paris"}))
    assert result["isError"] is False, result_text(result)
    assert result["structuredContent"] == {"status": 200, "answer": {"hello": "world", "method": "GET"}}
    lines = [json.loads(line) for line in weather.logs().splitlines()
             if line.startswith("{") and '"ringfence.network"' in line]
    assert [(line["method"], line["server"], line["path"], line["status"], line["outcome"]) for line in lines] == [
        ("GET", f"localhost:{api.port}", "/hello?city=&secret=", 200, "ok")]
    assert "abc123zz" not in weather.logs() and "key-9f8e7d6c" not in weather.logs()
