"""The raw aio-pika request/reply ceiling: an echo worker and a direct reply-to client.

No envelope parsing, no SOAP, no crypto: what RabbitMQ and aio-pika alone cost on this machine,
with payloads the size of the hub's. `python -m bench.raw_echo URL QUEUE REPLY_BYTES` runs the
worker in its own process, as the hub's worker runs in its own.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Self

import aio_pika


async def echo_worker(url: str, queue_name: str, reply_bytes: int) -> None:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=64)
    queue = await channel.declare_queue(queue_name, auto_delete=True)
    reply = b"x" * reply_bytes

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await channel.default_exchange.publish(
            aio_pika.Message(reply, correlation_id=message.correlation_id, content_type="application/json"),
            routing_key=message.reply_to or "",
        )
        await message.ack()

    await queue.consume(on_message)
    print("ready", flush=True)
    await asyncio.Event().wait()


class RawClient:
    """Request/reply by direct reply-to with futures keyed by correlation id."""

    def __init__(self, url: str, queue_name: str):
        self.url, self.queue_name = url, queue_name
        self.pending: dict[str, asyncio.Future[bytes]] = {}

    async def __aenter__(self) -> Self:
        self.connection = await aio_pika.connect(self.url)
        self.channel = await self.connection.channel()
        reply_queue = await self.channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
        await reply_queue.consume(self._on_reply, no_ack=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self.pending.pop(message.correlation_id or "", None)
        if future and not future.done():
            future.set_result(message.body)

    async def call(self, body: bytes) -> bytes:
        cid = str(uuid.uuid4())
        future = asyncio.get_running_loop().create_future()
        self.pending[cid] = future
        await self.channel.default_exchange.publish(
            aio_pika.Message(body, correlation_id=cid, reply_to="amq.rabbitmq.reply-to",
                             content_type="application/json"),
            routing_key=self.queue_name,
        )
        return await asyncio.wait_for(future, 10)


if __name__ == "__main__":
    asyncio.run(echo_worker(sys.argv[1], sys.argv[2], int(sys.argv[3])))
