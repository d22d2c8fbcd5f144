"""Reconnects: short growing jittered pauses, several broker addresses, and a connection the broker
closed (management API) back in well under a second, on the real RabbitMQ."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit

import httpx
import pytest

from ehis.bus import robust
from ehis.bus.client import BusClient
from ehis.bus.connection import addresses, where
from ehis.bus.transport import open_transport
from ehis.bus.worker import Worker
from ehis.testing import free_port

from .contract import REQUESTER, SERVED, scripted_dispatch
from .test_amqp import _delete_namespace


def test_a_url_with_several_hosts_gives_one_url_per_node_sharing_login_vhost_and_parameters() -> None:
    url = "amqp://u:p%40ss@10.0.0.1:5672,10.0.0.2:5673, node3/ehis?heartbeat=5"
    assert addresses(url) == ["amqp://u:p%40ss@10.0.0.1:5672/ehis?heartbeat=5",
                              "amqp://u:p%40ss@10.0.0.2:5673/ehis?heartbeat=5",
                              "amqp://u:p%40ss@node3/ehis?heartbeat=5"]
    assert addresses("amqp://u:p@h:1/v") == ["amqp://u:p@h:1/v"]
    assert where(url) == ("10.0.0.1:5672,10.0.0.2:5673,node3:5672", "u", "ehis")


def test_pauses_start_short_double_and_stop_at_two_seconds_with_jitter() -> None:
    rng = random.Random(7)
    assert robust.pause(0) == 0
    bases = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    for failures, base in enumerate(bases, start=1):
        got = [robust.pause(failures, rng) for _ in range(50)]
        assert all(base * 0.75 <= p <= base * 1.25 for p in got)
        assert len({round(p, 6) for p in got}) > 1  # jittered, not in step


def test_the_retry_step_aio_pika_calls_is_the_one_overridden() -> None:
    """An aio-pika upgrade renaming its private connect step would silently bring back 5 s waits."""
    from aio_pika.robust_connection import RobustConnection

    assert hasattr(RobustConnection, "_RobustConnection__connect_transport")
    assert "_RobustConnection__connect_transport" in robust.HubConnection.__dict__


async def _connections(admin: str, name: str) -> list[dict]:
    parts = urlsplit(admin)
    async with httpx.AsyncClient(auth=(parts.username or "guest", parts.password or "guest"), timeout=10) as http:
        listed = (await http.get(f"{parts.scheme}://{parts.hostname}:{parts.port}/api/connections")).json()
    return [c for c in listed if (c.get("client_properties") or {}).get("connection_name") == name]


async def _force_close(admin: str, name: str) -> None:
    """Close our own connection `name` from the broker's side (as an operator or a node failover would)."""
    parts = urlsplit(admin)
    async with httpx.AsyncClient(auth=(parts.username or "guest", parts.password or "guest"), timeout=10) as http:
        for _ in range(100):  # the management API lists a connection a moment after it opens
            found = await _connections(admin, name)
            if found:
                break
            await asyncio.sleep(0.1)
        assert found, f"no connection named {name!r}"
        for connection in found:
            response = await http.delete(f"{parts.scheme}://{parts.hostname}:{parts.port}/api/connections/"
                                         f"{quote(connection['name'], safe='')}",
                                         headers={"X-Reason": "test: force close"})
            assert response.status_code in (204, 404)


@pytest.fixture
async def namespace(rabbitmq_url: str) -> AsyncIterator[str]:
    name = f"ehis-reconnect-{uuid.uuid4().hex[:10]}"
    yield name
    await _delete_namespace(rabbitmq_url, name)


async def _until_ok(client: BusClient, within: float) -> float:
    """Seconds until a request gets an ok reply again (short deadlines, tried back to back)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        reply = await client.request("din.person", {"do": "echo"}, timeout=0.5)
        if reply.status == "ok":
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"no ok reply within {within} s of the forced close")


@pytest.mark.rabbitmq
async def test_connections_the_broker_closes_are_restored_in_well_under_a_second(
        rabbitmq_url: str, admin_url: str, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ehis.bus.robust")
    async with open_transport(rabbitmq_url, namespace=namespace) as served, \
            open_transport(rabbitmq_url, namespace=namespace) as calling:
        worker = Worker(served, scripted_dispatch)
        await worker.serve("din", SERVED)
        client = BusClient(calling, requester=REQUESTER)
        assert (await client.request("din.person", {"do": "echo"}, timeout=5)).status == "ok"
        times = []
        for _ in range(2):  # each round waits ~5 s for the management API to list the new connection
            await _force_close(admin_url, f"ehis {namespace}")  # both ends: the worker's and the caller's
            times.append(await _until_ok(client, within=5))
        await worker.stop()
    print(f"\nrestored (first ok reply after a forced close): {', '.join(f'{t:.3f} s' for t in times)}")
    assert max(times) < 1.5, times  # aio-pika alone waits 5 s
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("ehis")]  # aio-pika's may not format
    assert len([m for m in ours if "broker connection restored after" in m]) >= 2
    password = urlsplit(rabbitmq_url).password or "guest"
    assert all(f":{password}@" not in m for m in ours)


@pytest.mark.rabbitmq
async def test_a_dead_first_address_is_passed_over_for_a_live_one(rabbitmq_url: str, namespace: str) -> None:
    parts = urlsplit(rabbitmq_url)
    login, _, live = parts.netloc.rpartition("@")
    several = parts._replace(netloc=f"{login}@127.0.0.1:{free_port()},{live}").geturl()
    async with open_transport(several, namespace=namespace) as served, \
            open_transport(several, namespace=namespace) as calling:
        worker = Worker(served, scripted_dispatch)
        await worker.serve("din", SERVED)
        client = BusClient(calling, requester=REQUESTER)
        assert (await client.request("din.person", {"do": "echo"}, timeout=5)).status == "ok"
        await worker.stop()


@pytest.mark.rabbitmq
async def test_no_live_address_fails_at_once_naming_every_node(namespace: str) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/"
    started = time.monotonic()
    transport = open_transport(url, namespace=namespace)
    with pytest.raises(ConnectionError) as failed:
        await transport.connect()
    assert time.monotonic() - started < 3
    assert str(failed.value).count("127.0.0.1:") == 2 and "guest:guest" not in str(failed.value)
