"""The bus contract on RabbitMQ, plus the layout only amqp:// has (quorum queues, DLX, reply-to)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pamqp.common import FieldTable

from ehis.bus.amqp import DELIVERY_LIMIT, AmqpTransport, delete_namespace
from ehis.bus.client import BusClient
from ehis.bus.transport import Delivery, Transport, open_transport
from ehis.bus.worker import Worker
from ehis.errors import ErrorCode

from .contract import REQUESTER, TransportContract


async def _delete_namespace(url: str, namespace: str) -> None:
    await delete_namespace(url, namespace, extra_queues=("test",))


@pytest.fixture
async def channel(rabbitmq_url: str) -> AsyncIterator[AbstractChannel]:
    """A plain channel of the test's own, to look at the broker from outside the transport."""
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        yield await connection.channel()


async def _next(queue: AbstractQueue, within: float = 5.0) -> AbstractIncomingMessage:
    started = time.monotonic()
    while time.monotonic() - started < within:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing arrived in {queue.name} within {within}s")


def _death_reason(message: AbstractIncomingMessage) -> object:
    """Why RabbitMQ dead-lettered `message` (its first x-death record)."""
    deaths = message.headers.get("x-death")
    assert isinstance(deaths, list) and isinstance(deaths[0], dict)
    return deaths[0].get("reason")


@pytest.mark.rabbitmq
class TestAmqpTransport(TransportContract):
    @pytest.fixture
    def transport_url(self, rabbitmq_url: str) -> str:
        return rabbitmq_url

    @pytest.fixture
    def broker_user(self, rabbitmq_url: str) -> str | None:
        return urlsplit(rabbitmq_url).username or "guest"

    @pytest.fixture
    async def namespace(self, rabbitmq_url: str) -> AsyncIterator[str]:
        name = f"ehis-test-{uuid.uuid4().hex[:12]}"
        yield name
        await _delete_namespace(rabbitmq_url, name)

    async def test_system_queue_is_quorum_with_delivery_limit_and_dlx(
        self, worker: Worker, namespace: str, rabbitmq_url: str
    ) -> None:
        expected: FieldTable = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": f"{namespace}.dlx",
        }
        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            # RabbitMQ accepts a redeclaration only with equivalent arguments, so the same
            # arguments pass and any change of type, limit or DLX is refused.
            same = await connection.channel()
            await same.declare_queue(f"{namespace}.din", durable=True, arguments=expected)
            changes: list[FieldTable] = [
                {"x-queue-type": "classic"},
                {"x-delivery-limit": 99},
                {"x-dead-letter-exchange": "other"},
            ]
            for change in changes:
                other = await connection.channel()
                with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
                    await other.declare_queue(f"{namespace}.din", durable=True, arguments={**expected, **change})

    async def test_request_uses_direct_reply_to(
        self, client: BusClient, client_transport: Transport, channel: AbstractChannel, namespace: str
    ) -> None:
        await client_transport.connect()  # declares <ns>.requests
        spy = await channel.declare_queue(exclusive=True)
        await spy.bind(f"{namespace}.requests", routing_key="din.person")
        pending = asyncio.create_task(client.request("din.person", {"fin": "x"}, timeout=3.0))
        seen = await _next(spy)
        assert seen.reply_to and seen.reply_to.startswith("amq.rabbitmq.reply-to")
        assert seen.user_id == "guest" or seen.user_id == urlsplit(client_transport.url).username
        assert seen.content_type == "application/json"
        assert isinstance(seen.expiration, float) and 0 < seen.expiration <= 3.0
        assert seen.correlation_id and seen.correlation_id in seen.body.decode()
        body = b'{"id": "%s", "status": "ok", "data": {"from": "spy"}}' % seen.correlation_id.encode()
        reply = aio_pika.Message(body, correlation_id=seen.correlation_id)
        await channel.default_exchange.publish(reply, routing_key=seen.reply_to)
        answered = await asyncio.wait_for(pending, 2.0)
        assert answered.data == {"from": "spy"}

    async def test_expired_request_is_kept_in_dead(
        self, client: BusClient, worker: Worker, channel: AbstractChannel, namespace: str
    ) -> None:
        await worker.stop()  # the queue stays bound, but nobody consumes it now
        reply = await client.request("din.person", {}, timeout=0.3)
        assert reply.error is not None and reply.error.code == ErrorCode.DEADLINE_EXCEEDED
        dead = await _next(await channel.get_queue(f"{namespace}.dead"))
        assert dead.correlation_id == reply.id
        assert _death_reason(dead) == "expired"

    async def test_handler_crash_is_answered_then_dead_lettered(
        self, client: BusClient, worker_transport: Transport, channel: AbstractChannel, namespace: str
    ) -> None:
        async def broken(delivery: Delivery) -> bytes:
            raise RuntimeError("a handler defect")

        await worker_transport.serve(["din.person"], "din", broken)
        reply = await client.request("din.person", {})
        assert reply.error is not None and reply.error.code == ErrorCode.INTERNAL
        dead = await _next(await channel.get_queue(f"{namespace}.dead"))
        assert dead.correlation_id == reply.id
        assert _death_reason(dead) == "rejected"

    @pytest.mark.parametrize("reply_to", [None, "queue"])
    async def test_request_without_direct_reply_to_is_dead_lettered_unanswered(
        self, client: BusClient, worker: Worker, channel: AbstractChannel, namespace: str, reply_to: str | None
    ) -> None:
        """A reply_to naming a queue would make the worker publish where the caller may not."""
        exchange = await channel.get_exchange(f"{namespace}.requests")
        target = f"{namespace}.dead" if reply_to else None
        await exchange.publish(aio_pika.Message(b"{}", correlation_id="orphan", reply_to=target),
                               routing_key="din.person")
        assert (await client.request("din.person", {})).status == "ok"
        dead = await _next(await channel.get_queue(f"{namespace}.dead"))
        assert dead.correlation_id == "orphan" and _death_reason(dead) == "rejected"
        await asyncio.sleep(0.1)
        state = await channel.declare_queue(f"{namespace}.dead", passive=True)
        assert state.declaration_result.message_count == 0  # no reply was published into it


async def test_scheme_picks_amqp() -> None:
    assert isinstance(open_transport("amqp://u:p@host/"), AmqpTransport)
    assert isinstance(open_transport("amqps://u:p@host/"), AmqpTransport)
    assert AmqpTransport("amqp://h/", namespace="n").names("din") == {
        "requests": "n.requests", "dlx": "n.dlx", "dead": "n.dead", "unrouted": "n.unrouted", "queue": "n.din",
    }


async def test_unreachable_broker_is_unavailable_not_an_exception() -> None:
    transport = open_transport("amqp://guest:guest@127.0.0.1:1/", namespace="nowhere")
    client = BusClient(transport, requester=REQUESTER)
    started = time.monotonic()
    reply = await client.request("din.person", {}, timeout=3.0)
    assert reply.error is not None and reply.error.code == ErrorCode.UNAVAILABLE
    assert "bus is unavailable" in reply.error.message
    assert time.monotonic() - started < 1.0
    await client.close()
