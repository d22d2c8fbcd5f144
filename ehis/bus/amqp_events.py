"""Events on RabbitMQ (ehis.bus.events says the layout): confirmed publishing, explicit acks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity, DeliveryError
from aiormq.exceptions import ChannelAccessRefused
from pamqp.common import FieldTable

from ehis.bus import robust
from ehis.bus.events import (
    EVENT_DELIVERY_LIMIT,
    EventBus,
    Received,
    decode,
    event_names,
)
from ehis.errors import Forbidden, SourceUnavailable
from ehis.events.models import Event

log = logging.getLogger(__name__)


async def declare_events(channel: AbstractChannel, namespace: str,
                         receivers: Mapping[str, Sequence[str]]) -> AbstractExchange:
    """The exchange, the dead letters, and each subsystem's queue bound to its patterns.

    The one declaration of the layout: `ehis broker setup` runs it as the worker user, and each
    worker on start (so they never disagree; RabbitMQ refuses a queue redeclared otherwise).
    Bindings are only added here: `ehis broker setup` removes those the policy no longer grants.
    """
    names = event_names(namespace)
    exchange = await channel.declare_exchange(names["exchange"], aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(names["dlx"], aio_pika.ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(names["dead"], durable=True)
    await dead.bind(dlx, routing_key="")
    arguments: FieldTable = {"x-queue-type": "quorum", "x-delivery-limit": EVENT_DELIVERY_LIMIT,
                             "x-dead-letter-exchange": names["dlx"]}
    for subsystem, patterns in receivers.items():
        queue = await channel.declare_queue(event_names(namespace, subsystem)["queue"], durable=True,
                                            arguments=arguments)
        for pattern in patterns:
            await queue.bind(exchange, routing_key=pattern)
    return exchange


class AmqpEventBus(EventBus):
    async def connect(self) -> None:
        self._connection: AbstractRobustConnection = await robust.connect(  # several nodes, fast retries
            self.url, name=f"ehis events {self.namespace}")
        self._user = self._connection.url.user or "guest"
        self._publisher: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def close(self) -> None:
        await self._connection.close()

    async def declare(self, receivers: Mapping[str, Sequence[str]]) -> None:
        channel = await self._connection.channel()
        try:
            await declare_events(channel, self.namespace, receivers)
        finally:
            await channel.close()

    async def publish(self, event: Event) -> None:
        message = aio_pika.Message(
            event.to_bytes(), content_type="application/json", message_id=event.id, type=event.key,
            user_id=self._user, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=event.received_at)
        try:
            exchange = await self._events_exchange()
            await exchange.publish(message, routing_key=event.key, mandatory=False)
        except DeliveryError:  # nacked: the broker did not take it (a full disk, a queue it cannot reach)
            raise SourceUnavailable(f"the broker refused event {event.id}") from None
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            self._exchange = None
            raise SourceUnavailable(f"the bus is unavailable ({type(exc).__name__})") from None

    async def _events_exchange(self) -> AbstractExchange:
        if self._exchange is None or self._publisher is None or self._publisher.is_closed:
            self._publisher = await self._connection.channel(publisher_confirms=True)
            self._exchange = await self._publisher.declare_exchange(event_names(self.namespace)["exchange"],
                                                                    passive=True)
        return self._exchange

    async def subscribe(self, subsystem: str, *, prefetch: int = 8) -> AsyncIterator[Received]:
        channel = await self._connection.channel()
        try:
            await channel.set_qos(prefetch_count=prefetch)
            try:
                queue = await channel.declare_queue(event_names(self.namespace, subsystem)["queue"], passive=True)
                inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
                tag = await queue.consume(inbox.put)
            except ChannelNotFoundEntity:
                raise SourceUnavailable(f"no event queue for {subsystem} on this broker (run `ehis broker setup`; "
                                        "a subsystem that receives no event kind has none)") from None
            except ChannelAccessRefused:
                raise Forbidden(f"this broker login may not read {subsystem}'s events: a subsystem reads only its "
                                "own queue, logged in as itself") from None
            try:
                while True:
                    message = await inbox.get()
                    event = decode(message.body)
                    if event is None:
                        log.warning("a message on %s is not an event; dead-lettered", queue.name)
                        await message.reject(requeue=False)
                        continue
                    yield Received(event, _deliveries(message), _settler(message))
            finally:
                if not channel.is_closed:
                    await queue.cancel(tag)
        finally:
            if not channel.is_closed:
                await channel.close()  # the unacknowledged go back to the queue, counted

    async def depth(self, subsystem: str) -> int | None:
        try:
            channel = await self._connection.channel()
        except (AMQPError, ConnectionError, RuntimeError):
            return None
        try:
            queue = await channel.declare_queue(event_names(self.namespace, subsystem)["queue"], passive=True)
            return queue.declaration_result.message_count
        except (AMQPError, ConnectionError, RuntimeError):
            return None
        finally:
            if not channel.is_closed:
                await channel.close()


def _deliveries(message: AbstractIncomingMessage) -> int:
    """1 + the times a quorum queue gave it back (its x-delivery-count header)."""
    count = (message.headers or {}).get("x-delivery-count")
    return 1 + int(count) if isinstance(count, int) else (2 if message.redelivered else 1)


def _settler(message: AbstractIncomingMessage):
    async def settle(ack: bool, requeue: bool) -> None:
        try:
            if ack:
                await message.ack()
            else:
                await message.reject(requeue=requeue)
        except Exception:  # noqa: BLE001 - the channel is gone: the broker gives it again, counted
            log.warning("could not settle event %s: channel lost", message.message_id or "(no id)")
    return settle
