"""serve_admin on a real socket inside the test's event loop."""

from __future__ import annotations

import signal
import socket

import httpx
import pytest
from starlette.applications import Starlette

from ehis.monitor import HubMetrics, create_admin_app, parse_listen, serve_admin

from .conftest import FakeProvider, status


def app() -> Starlette:
    provider = FakeProvider(statuses=[status("din")])
    return create_admin_app(HubMetrics(sources=provider.sources), provider)


async def test_port_zero_serves_on_a_real_port_then_stops() -> None:
    handler_before = signal.getsignal(signal.SIGINT)
    async with serve_admin(app(), "127.0.0.1", 0) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/health/live")).json() == {"status": "alive"}
            assert (await client.get("/health/ready")).status_code == 200
        assert signal.getsignal(signal.SIGINT) is handler_before  # the hub owns the signals
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{url}/health/live")


async def test_stops_with_a_keep_alive_connection_open() -> None:
    async with serve_admin(app(), "127.0.0.1", 0) as url:
        client = httpx.AsyncClient(base_url=url)
        assert (await client.get("/metrics")).status_code == 200  # connection kept alive in the pool
    await client.aclose()


async def test_busy_port_is_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            async with serve_admin(app(), "127.0.0.1", taken.getsockname()[1]):
                pytest.fail("served on a port in use")


async def test_wildcard_host_reports_a_dialable_url() -> None:
    async with serve_admin(app(), "0.0.0.0", 0) as url:
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/health/live")).status_code == 200


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:8702", ("127.0.0.1", 8702)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("[::1]:8702", ("::1", 8702)),
    ("", None),
    ("  ", None),
])
def test_parse_listen(value: str, expected: tuple[str, int] | None) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8702", "localhost", "localhost:http", ":8702"])
def test_parse_listen_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_listen(value)
