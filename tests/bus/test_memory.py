"""The bus contract on the in-process transport, plus what only memory:// does."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ehis.bus.client import BusClient
from ehis.bus.envelope import Meta, Reply, Request
from ehis.bus.memory import MemoryTransport
from ehis.bus.transport import open_transport
from ehis.bus.worker import Worker
from ehis.errors import ErrorCode

from .contract import REQUESTER, TransportContract


class TestMemoryTransport(TransportContract):
    @pytest.fixture
    def transport_url(self) -> str:
        return f"memory://contract-user@bus-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def broker_user(self) -> str | None:
        return "contract-user"


def test_scheme_picks_the_transport() -> None:
    assert isinstance(open_transport("memory://"), MemoryTransport)
    transport = open_transport("memory://hub@local", namespace="x", prefetch=3)
    assert (transport.namespace, transport.prefetch) == ("x", 3)
    with pytest.raises(ValueError, match="unsupported bus URL scheme 'redis'"):
        open_transport("redis://localhost")


async def test_same_url_same_broker_other_url_other_broker() -> None:
    async def echo(request: Request, user: str | None) -> Reply:
        return Reply.ok(request.id, {"user": user}, Meta())

    async with (
        open_transport("memory://shared") as w,
        open_transport("memory://shared") as c,
        open_transport("memory://elsewhere") as stranger,
    ):
        await Worker(w, echo).serve("din", ["din.person"])
        reply = await BusClient(c, requester=REQUESTER).request("din.person", {})
        assert reply.data == {"user": None}  # no user in the URL: the broker vouches for no one
        reply = await BusClient(stranger, requester=REQUESTER).request("din.person", {})
        assert reply.error is not None and reply.error.code == ErrorCode.UNAVAILABLE


async def test_request_expired_in_the_queue_is_dropped_not_dispatched() -> None:
    seen: list[str] = []

    async def slow(request: Request, user: str | None) -> Reply:
        seen.append(request.params["n"])
        await asyncio.sleep(0.4)
        return Reply.ok(request.id, {}, Meta())

    async with open_transport("memory://q", prefetch=1) as w, open_transport("memory://q") as c:
        client = BusClient(c, requester=REQUESTER)
        await Worker(w, slow).serve("din", ["din.person"])
        first = asyncio.create_task(client.request("din.person", {"n": "first"}, timeout=2))
        await asyncio.sleep(0.05)
        second = await client.request("din.person", {"n": "second"}, timeout=0.1)
        assert second.error is not None and second.error.code == ErrorCode.DEADLINE_EXCEEDED
        assert (await first).status == "ok"
        await asyncio.sleep(0.05)
        assert seen == ["first"]


async def test_stopped_worker_means_unavailable() -> None:
    async def echo(request: Request, user: str | None) -> Reply:
        return Reply.ok(request.id, {}, Meta())

    async with open_transport("memory://stop") as w, open_transport("memory://stop") as c:
        worker = Worker(w, echo)
        await worker.serve("din", ["din.person"])
        client = BusClient(c, requester=REQUESTER)
        assert (await client.request("din.person", {})).status == "ok"
        await worker.stop()
        reply = await client.request("din.person", {})
        assert reply.error is not None and reply.error.code == ErrorCode.UNAVAILABLE
