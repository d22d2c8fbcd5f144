"""queue_type = "quorum" | "classic": the setting is validated, and a worker on RabbitMQ declares its
system queues as the setting says (the catch-all stays quorum), with the DLX either way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from pydantic import ValidationError

from ehis.bus.amqp import delete_namespace
from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply
from ehis.bus.transport import UNROUTED, Delivery, open_transport
from ehis.config import Settings

from .contract import REQUESTER


def test_queue_type_is_quorum_unless_set_to_classic(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().queue_type == "quorum"
    assert Settings(queue_type="classic").queue_type == "classic"
    with pytest.raises(ValidationError, match="queue_type"):
        Settings(queue_type="stream")
    monkeypatch.setenv("EHIS_QUEUE_TYPE", "lazy")
    with pytest.raises(ValidationError, match="queue_type"):
        Settings()


def test_open_transport_carries_the_queue_type() -> None:
    assert open_transport("memory://q", queue_type="classic").queue_type == "classic"
    assert open_transport("memory://q").queue_type == "quorum"


@pytest.fixture
async def namespace(rabbitmq_url: str) -> AsyncIterator[str]:
    name = f"ehis-test-{uuid.uuid4().hex[:12]}"
    yield name
    await delete_namespace(rabbitmq_url, name)


@pytest.mark.rabbitmq
async def test_a_classic_worker_declares_classic_system_queues_and_answers(rabbitmq_url: str, namespace: str) -> None:
    async def echo(delivery: Delivery) -> bytes:
        return Reply(id="x", status="ok", data={"classic": True}).to_bytes()

    worker = open_transport(rabbitmq_url, namespace=namespace, queue_type="classic")
    caller = open_transport(rabbitmq_url, namespace=namespace)
    async with worker, caller:
        await worker.serve(["din.person"], "din", echo)
        await worker.serve([], UNROUTED, echo)
        reply = await BusClient(caller, requester=REQUESTER).request("din.person", {}, timeout=5)
        assert reply.data == {"classic": True}
        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            # RabbitMQ accepts a redeclaration only with equivalent arguments: these are the queues' own
            channel = await connection.channel()
            await channel.declare_queue(f"{namespace}.din", durable=True, arguments={
                "x-queue-type": "classic", "x-dead-letter-exchange": f"{namespace}.dlx"})
            other = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
                await other.declare_queue(f"{namespace}.{UNROUTED}", durable=True,
                                          arguments={"x-queue-type": "classic"})
