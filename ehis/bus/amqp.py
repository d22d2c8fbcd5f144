"""The RabbitMQ transport (aio-pika, robust connection), laid out as DESIGN.md "The bus" says.

    <ns>.requests   direct exchange; routing key = service name; alternate exchange <ns>.unrouted
    <ns>.unrouted   fanout exchange -> the quorum queue <ns>.unrouted: whatever no system queue
                    takes (an unknown service, one no worker serves) reaches a worker all the same
    <ns>.<system>   durable quorum queue per source system, with a delivery limit and
                    <ns>.dlx as dead-letter exchange, so poison and expired requests are kept
    <ns>.dlx        fanout exchange -> <ns>.dead, a durable queue an operator can inspect

Requests are published `mandatory` with publisher confirms; with the alternate exchange every
request is routed to some queue, and a worker answers it (`unknown_service`, `not_served`...)
and records it, instead of the broker silently dropping it. Replies use direct reply-to on the
publishing channel. `user_id` is the connection's login: RabbitMQ rejects any other value, so
the worker can trust it as the caller's identity. No pickle: bodies are the JSON envelopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable
from typing import TypeVar

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import (
    AMQPError,
    ChannelNotFoundEntity,
    DeliveryError,
    PublishError,
)
from pamqp.common import FieldTable

from ehis import tracing
from ehis.bus import robust
from ehis.bus.connection import BusConnectionError, addresses
from ehis.bus.dead_letters import DEAD_ARGUMENTS
from ehis.bus.transport import (
    UNROUTED,
    Consumer,
    Delivery,
    Handler,
    Transport,
    system_of,
)
from ehis.errors import SourceUnavailable

log = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
JSON = "application/json"
DELIVERY_LIMIT = 5
MIN_EXPIRATION = 0.005  # seconds; "0" would mean "deliver now or never"
REPUBLISH_MARGIN = 0.05  # seconds before the caller's deadline a request is no longer sent again
BROKER_ANSWER = 30.0  # seconds the broker has to answer a declaration, a cancel or a close
T = TypeVar("T")


async def answered(what: str, step: Awaitable[T]) -> T:
    """`step` (a broker RPC: aiormq waits for its answer forever), or a BusConnectionError naming
    it after BROKER_ANSWER seconds: a broker that stops answering is an error, never a hang."""
    try:
        async with asyncio.timeout(BROKER_ANSWER):
            return await step
    except TimeoutError:
        raise BusConnectionError(f"the broker did not answer {what} within {BROKER_ANSWER:.0f} s") from None


async def _let_go(what: str, step: Awaitable[object]) -> None:
    """A closing step that may fail or go unanswered: logged, and the rest of the shutdown goes on."""
    try:
        await answered(what, step)
    except Exception as exc:  # noqa: BLE001 - shutting down: nothing left to tell a caller
        log.warning("%s: %s", what, exc if isinstance(exc, BusConnectionError) else type(exc).__name__)


class AmqpTransport(Transport):
    async def _connect(self) -> None:
        # Fast jittered reconnects over every node of the URL (ehis.bus.robust); amqps:// is
        # always verified (ehis.security.tls).
        self._connection: AbstractRobustConnection = await robust.connect(
            self.url, name=f"ehis {self.namespace}")
        self._user = self._connection.url.user or "guest"  # aio-pika's default login
        try:
            await answered("setting up the request channel", self._open_channel())
        except BaseException:
            await _let_go("closing the connection", self._connection.close())
            raise

    async def _open_channel(self) -> None:
        # One channel both publishes requests and consumes their direct replies (RabbitMQ requires it).
        self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._requests = await self._find_requests(self._channel)
        replies = await self._channel.declare_queue(DIRECT_REPLY_TO, passive=True)
        await replies.consume(self._on_reply, no_ack=True)

    async def _close(self) -> None:
        await _let_go("closing the connection", self._connection.close())

    @property
    def connected(self) -> bool:
        return self._connected and not self._connection.is_closed and self._connection.connected.is_set()

    def names(self, queue: str | None = None) -> dict[str, str]:
        """Exchange and queue names in this namespace (also what a cleanup must delete)."""
        return topology_names(self.namespace, queue)

    async def dead_letters(self) -> int | None:
        """Depth of `<ns>.dead`, by a passive declare on a channel of its own."""
        channel = await self._connection.channel()
        try:
            queue = await channel.declare_queue(self.names()["dead"], passive=True)
            return int(queue.declaration_result.message_count or 0)
        finally:
            await channel.close()

    async def _find_requests(self, channel: AbstractChannel) -> AbstractExchange:
        """`<ns>.requests`, declared only when missing.

        A subsystem's broker user may not configure anything (`ehis broker setup`), so a caller
        looks the exchange up passively; only a login allowed to (guest, a worker) creates it.
        A failed passive declare closes its channel, hence the probe on a channel of its own.
        """
        name = self.names()["requests"]
        probe = await self._connection.channel()
        try:
            await probe.declare_exchange(name, passive=True)
        except ChannelNotFoundEntity:
            return await _declare_requests(channel, self.namespace)
        finally:
            await probe.close()
        return await channel.declare_exchange(name, passive=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        if message.correlation_id:
            self.resolve(message.correlation_id, message.body)

    async def _publish(self, service: str, body: bytes, correlation_id: str, timeout: float) -> None:
        """Publish the request, confirmed. While the broker connection is lost or the queue has no
        leader (a node died: the robust connection moves to another), publish again once it is
        back, until shortly before the caller's deadline: the request was not accepted, so
        sending it again is safe, and the caller gets an answer rather than a fast `unavailable`."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout - REPUBLISH_MARGIN
        pause = 0.02
        while True:
            message = aio_pika.Message(
                body,
                content_type=JSON,
                correlation_id=correlation_id,
                reply_to=DIRECT_REPLY_TO,
                expiration=max(give_up + REPUBLISH_MARGIN - loop.time(), MIN_EXPIRATION),
                user_id=self._user,
                delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                headers=tracing.inject(),  # W3C trace context, when tracing is on
            )
            try:
                await self._requests.publish(message, routing_key=service, mandatory=True)
                return
            except PublishError:  # returned: no queue is bound to this service
                raise SourceUnavailable(f"no worker serves {service}", source=system_of(service)) from None
            except (DeliveryError, AMQPError, ConnectionError, RuntimeError) as exc:
                # nacked (a queue without a leader), the connection lost, the channel reopening
                if loop.time() + pause >= give_up:
                    what = "refused the request" if isinstance(exc, DeliveryError) else "is unavailable"
                    raise SourceUnavailable(f"the bus {what} ({type(exc).__name__})",
                                            source=system_of(service)) from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)
                with contextlib.suppress(TimeoutError):  # the robust connection is back, or we try anyway
                    await asyncio.wait_for(self._connection.connected.wait(), max(0.0, give_up - loop.time()))

    async def _serve(self, services: list[str], queue: str, handler: Handler) -> Consumer:
        # Replies are not confirmed: the ack follows the reply on this channel, and RabbitMQ handles
        # a channel's frames in order, so it never has the ack without the reply; a reply it cannot
        # route (the caller gone) is dropped, confirmed or not. Waiting for the confirm cost about
        # 0.1 ms of worker CPU a request and a round trip before the ack.
        channel = await answered(f"opening a channel for {self.namespace}.{queue}",
                                  self._connection.channel(publisher_confirms=False))
        try:
            return await answered(f"declaring and consuming {self.namespace}.{queue}",
                                   self._consume(channel, services, queue, handler))
        except BaseException:
            await _let_go(f"closing the channel of {self.namespace}.{queue}", channel.close())
            raise

    async def _consume(self, channel: AbstractChannel, services: list[str], queue: str, handler: Handler) -> Consumer:
        await channel.set_qos(prefetch_count=self.prefetch)
        system_queue = await declare_system(channel, self.namespace, queue, services, queue_type=self.queue_type)
        consumer = _AmqpConsumer(channel, system_queue, handler)
        await consumer.start()
        return consumer


def topology_names(namespace: str, queue: str | None = None) -> dict[str, str]:
    """Exchange and queue names in `namespace`; `queue` adds the system queue `<ns>.<queue>`."""
    names = {"requests": f"{namespace}.requests", "dlx": f"{namespace}.dlx", "dead": f"{namespace}.dead",
             "unrouted": f"{namespace}.{UNROUTED}"}
    if queue is not None:
        names["queue"] = f"{namespace}.{queue}"
    return names


async def _declare_requests(channel: AbstractChannel, namespace: str) -> AbstractExchange:
    names = topology_names(namespace)
    await channel.declare_exchange(names["unrouted"], aio_pika.ExchangeType.FANOUT, durable=True)
    return await channel.declare_exchange(names["requests"], aio_pika.ExchangeType.DIRECT, durable=True,
                                          arguments={"alternate-exchange": names["unrouted"]})


async def declare_system(channel: AbstractChannel, namespace: str, queue: str, services: Iterable[str],
                         *, queue_type: str = "quorum") -> AbstractQueue:
    """Declare what a worker consuming `<ns>.<queue>` needs, binding `services` to it.

    The one declaration of the layout: workers call it before consuming and `ehis broker setup`
    calls it as the worker user, so the two can never disagree (RabbitMQ refuses a queue
    redeclared with other arguments).
    """
    names = topology_names(namespace, queue)
    requests = await _declare_requests(channel, namespace)
    dlx = await channel.declare_exchange(names["dlx"], aio_pika.ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(names["dead"], durable=True, arguments=DEAD_ARGUMENTS)
    await dead.bind(dlx, routing_key="")
    arguments: FieldTable = {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": names["dlx"],
    }
    if queue_type == "classic" and queue != UNROUTED:  # the catch-all stays quorum: broker setup declares it
        arguments = {"x-queue-type": "classic", "x-dead-letter-exchange": names["dlx"]}
    system_queue = await channel.declare_queue(names["queue"], durable=True, arguments=arguments)
    if queue == UNROUTED:
        await system_queue.bind(names["unrouted"], routing_key="")
    for service in services:
        await system_queue.bind(requests, routing_key=service)
    return system_queue


class _AmqpConsumer(Consumer):
    """Handles each message in its own task: reply published, then ack, in that order on one channel."""

    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, handler: Handler) -> None:
        super().__init__()
        self._channel, self._queue, self._handler = channel, queue, handler
        self._tag: str | None = None

    async def start(self) -> None:
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        await self.within(self._handle(message))

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        cid = message.correlation_id or ""
        if not (message.reply_to or "").startswith(DIRECT_REPLY_TO):
            # Replies go only to the sender's direct reply-to: any other queue name would let a
            # caller make the worker publish into queues the caller may not write to itself.
            log.warning("request %s on %s has no direct reply-to; dead-lettered", cid or "(no id)", self._queue.name)
            await _settle(message, ack=False, requeue=False)
            return
        delivery = Delivery(message.body, message.user_id, message.headers, redelivered=bool(message.redelivered))
        body, ok = await Transport.run_handler(self._handler, delivery, cid)
        reply = aio_pika.Message(body, content_type=JSON, correlation_id=cid or None)
        try:
            await self._channel.default_exchange.publish(reply, routing_key=message.reply_to, mandatory=False)
        except Exception:
            log.exception("reply to request %s not published; the request goes back to the queue", cid)
            await _settle(message, ack=False, requeue=True)
            return
        # A handler crash is not retried in a loop: the message is kept in <ns>.dead instead.
        await _settle(message, ack=ok, requeue=False)

    async def _cancel(self) -> None:
        if self._tag is not None and not self._channel.is_closed:
            await _let_go(f"cancelling the consumer of {self._queue.name}", self._queue.cancel(self._tag))

    async def _closed(self) -> None:
        if not self._channel.is_closed:
            await _let_go(f"closing the channel of {self._queue.name}", self._channel.close())


async def _settle(message: AbstractIncomingMessage, *, ack: bool, requeue: bool = False) -> None:
    """Ack, or nack (dead-lettered unless requeued); a lost channel makes the broker requeue anyway."""
    try:
        if ack:
            await message.ack()
        else:
            await message.nack(requeue=requeue)
    except Exception:  # noqa: BLE001 - whatever failed, the channel is gone and the broker requeues
        log.warning("could not settle request %s: channel lost", message.correlation_id or "(no id)")


async def delete_namespace(url: str, namespace: str, extra_queues: tuple[str, ...] = ()) -> None:
    """Delete a namespace's exchanges and queues (tests, benchmarks; deleting a missing name is a no-op)."""
    from ehis.catalogue import SYSTEMS

    connection = await aio_pika.connect(addresses(url)[0])
    async with connection:
        channel = await connection.channel()
        queues = [f"{namespace}.{s.code}" for s in SYSTEMS] + [
            f"{namespace}.{q}" for q in ("dead", UNROUTED, *extra_queues)]
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in (f"{namespace}.requests", f"{namespace}.dlx", f"{namespace}.{UNROUTED}"):
            await channel.exchange_delete(exchange)
