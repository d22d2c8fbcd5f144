"""The in-process transport: the embedded default, so the whole hub runs in one process.

Brokers live in a registry keyed by event loop and URL, so a client and a worker opened with
the same `memory://` URL in one process reach each other. Bodies cross as JSON bytes, exactly
as on RabbitMQ, so nothing works here that would break there. The URL's user part
(`memory://alice@bus`) plays the identity the broker vouches for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from ehis import tracing
from ehis.bus.transport import (
    UNROUTED,
    Consumer,
    Delivery,
    Handler,
    Transport,
    deadline_reply,
    system_of,
)
from ehis.errors import SourceUnavailable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Message:
    service: str
    body: bytes
    correlation_id: str
    reply_to: Transport
    user: str | None
    expires_at: float  # loop.time(), like AMQP `expiration`
    headers: dict[str, str] | None = None  # W3C trace context, as on RabbitMQ


class _Broker:
    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[_Message]] = {}
        self.routes: dict[str, str] = {}  # "<namespace>/<service>" -> queue name
        self.consumers: Counter[str] = Counter()  # queue name -> consumers attached


# asyncio queues belong to one loop, so each loop has its own brokers.
_BROKERS: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Broker]] = WeakKeyDictionary()


def _broker_for(url: str) -> _Broker:
    parts = urlsplit(url)
    key = f"{parts.hostname or ''}{parts.path}"
    return _BROKERS.setdefault(asyncio.get_running_loop(), {}).setdefault(key, _Broker())


class MemoryTransport(Transport):
    async def _connect(self) -> None:
        self._broker = _broker_for(self.url)
        self._user = urlsplit(self.url).username or None

    async def _close(self) -> None:
        pass

    async def _publish(self, service: str, body: bytes, correlation_id: str, timeout: float) -> None:
        queue = self._broker.routes.get(f"{self.namespace}/{service}")
        if queue is None or not self._broker.consumers[queue]:
            queue = f"{self.namespace}.{UNROUTED}"  # like an alternate exchange on RabbitMQ
        if not self._broker.consumers[queue]:
            raise SourceUnavailable(f"no worker is running for {service}", source=system_of(service))
        expires_at = asyncio.get_running_loop().time() + timeout
        message = _Message(service, body, correlation_id, self, self._user, expires_at, tracing.inject())
        self._broker.queues[queue].put_nowait(message)

    async def _serve(self, services: list[str], queue: str, handler: Handler) -> Consumer:
        name = f"{self.namespace}.{queue}"
        self._broker.queues.setdefault(name, asyncio.Queue())
        for service in services:
            self._broker.routes[f"{self.namespace}/{service}"] = name
        return _MemoryConsumer(self._broker, name, handler, self.prefetch)


class _MemoryConsumer(Consumer):
    """Takes up to `prefetch` messages at a time off one queue, each into its own task."""

    def __init__(self, broker: _Broker, queue: str, handler: Handler, prefetch: int) -> None:
        super().__init__()
        self._broker, self._queue, self._handler = broker, queue, handler
        self._slots = asyncio.Semaphore(prefetch)
        broker.consumers[queue] += 1
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        queue = self._broker.queues[self._queue]
        while True:
            await self._slots.acquire()
            try:
                message = await queue.get()
            except asyncio.CancelledError:
                self._slots.release()
                raise
            self.spawn(self._handle(message))

    async def _handle(self, message: _Message) -> None:
        cid = message.correlation_id
        try:
            if asyncio.get_running_loop().time() >= message.expires_at:
                log.info("request %s expired before delivery; dropped", cid)
                late = deadline_reply(cid, message.service, "the deadline passed before a worker took it")
                message.reply_to.resolve(cid, late.to_bytes())
                return
            delivery = Delivery(message.body, message.user, message.headers)
            body, ok = await Transport.run_handler(self._handler, delivery, cid)
            message.reply_to.resolve(cid, body)
            if not ok:
                log.warning("request %s dropped after its handler crashed", cid)
        finally:
            self._slots.release()

    async def _cancel(self) -> None:
        self._broker.consumers[self._queue] -= 1
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
