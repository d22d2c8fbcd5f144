"""The one bus interface both transports implement, and the URL alias table that picks one.

Everything a transport does not need to know about its broker lives here, once: pending replies
keyed by correlation id, the "never hang" timeout, the unavailable/deadline error replies, and
the bookkeeping of a running consumer (one task per message, drained on stop). A transport adds
only how bytes reach a queue and come back (kombu's lesson: its memory transport stays small).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from ehis.bus.envelope import Reply, Request, parse_reply
from ehis.errors import (
    BadRequest,
    DeadlineExceeded,
    EhisError,
    InternalError,
    SourceUnavailable,
)

log = logging.getLogger(__name__)

#: URL scheme -> "module:class". Transports are imported on first use, so the embedded
#: memory bus never imports aio-pika.
TRANSPORT_ALIASES: dict[str, str] = {
    "memory": "ehis.bus.memory:MemoryTransport",
    "amqp": "ehis.bus.amqp:AmqpTransport",
    "amqps": "ehis.bus.amqp:AmqpTransport",
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request as a worker receives it.

    `broker_user` is the identity the broker vouches for (AMQP `user_id`, which RabbitMQ
    checks against the publisher's login), never a claim taken from the body. `headers` are the
    message's headers (W3C trace context: ehis.tracing).
    """

    body: bytes
    broker_user: str | None = None
    headers: Mapping[str, Any] | None = None
    redelivered: bool = False  # the broker handed it over before (a worker died or lost its channel with it)


Handler = Callable[[Delivery], Awaitable[bytes]]
UNROUTED = "unrouted"
QueueType = Literal["quorum", "classic"]  # classic: lower latency, one node, no delivery limit (README)  # the catch-all queue: requests whose service no other queue takes


def system_of(service: str) -> str:
    return service.split(".", 1)[0]


def deadline_reply(correlation_id: str, service: str, message: str) -> Reply:
    return Reply.failure(correlation_id, DeadlineExceeded(message, source=system_of(service)))


class Consumer(ABC):
    """A running `Transport.serve`: each message is handled in its own task; `stop` drains them."""

    def __init__(self, *, grace: float = 10.0) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._grace = grace
        self._stopped = False

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Handle a message in a task of its own (for a receive loop that must not wait)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def within(self, coro: Coroutine[Any, Any, None]) -> None:
        """Handle a message in the task it arrived in (aio-pika already gives each one its own):
        `stop` drains it like a spawned one, without the cost of one more task per message."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await coro
        finally:
            self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop taking messages, then let the ones in hand finish (up to `grace` seconds)."""
        if self._stopped:
            return
        self._stopped = True
        await self._cancel()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self._grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._closed()

    @abstractmethod
    async def _cancel(self) -> None:
        """Stop receiving new messages."""

    async def _closed(self) -> None:
        """Release what the consumer holds, after its tasks are done."""


class Transport(ABC):
    """Request/reply over some broker: `call` on the client side, `serve` on the worker side.

    Bodies cross as JSON bytes, replies are correlated by request id, and `call` never hangs
    and never raises for a remote condition: it returns an error `Reply` instead.
    """

    def __init__(self, url: str, *, namespace: str = "ehis", prefetch: int = 64, queue_type: QueueType = "quorum") -> None:
        self.url = url
        self.namespace = namespace
        self.prefetch = prefetch
        self.queue_type = queue_type  # of the per-system request queues a worker declares (RabbitMQ)
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._consumers: list[Consumer] = []
        self._connected = False
        self._lock: asyncio.Lock | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the broker can be reached now (readiness); a transport overrides it if it can tell."""
        return self._connected

    async def connect(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._connected:
                try:
                    await self._connect()
                except Exception as exc:
                    if (why := _explained(exc, self.url)) is not None:
                        raise why from exc
                    raise
                self._connected = True

    async def close(self) -> None:
        """Stop consumers, fail the calls still waiting, disconnect. Safe to call twice."""
        if not self._connected:
            return
        self._connected = False
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.stop()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SourceUnavailable("the bus transport was closed"))
        await self._close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- client side -------------------------------------------------------------------------

    async def call(self, request: Request, timeout: float) -> Reply:
        """Publish `request` and await its reply, for at most `timeout` or the request's deadline."""
        timeout = min(timeout, request.remaining())
        return await self.send(request.service, request.to_bytes(), correlation_id=request.id, timeout=timeout)

    async def send(self, service: str, body: bytes, *, correlation_id: str, timeout: float) -> Reply:
        """`call` for a body already serialized (or deliberately malformed, in tests)."""
        if timeout <= 0:
            return deadline_reply(correlation_id, service, "the deadline passed before the request was sent")
        if correlation_id in self._pending:
            return Reply.failure(correlation_id, BadRequest("a request with this id is already in flight"))
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with asyncio.timeout(timeout):
                await self._connect_for(service)
                await self._publish(service, body, correlation_id, timeout)
                raw = await future
        except EhisError as exc:  # nothing serves the service, no broker, or closed under us
            return Reply.failure(correlation_id, exc)
        except TimeoutError:
            return deadline_reply(correlation_id, service, f"no reply within {timeout:.3f}s")
        finally:
            self._pending.pop(correlation_id, None)
        try:
            return parse_reply(raw)
        except EhisError:
            log.error("malformed reply to request %s", correlation_id)
            return Reply.failure(correlation_id, InternalError(f"malformed reply; request id {correlation_id}"))

    async def _connect_for(self, service: str) -> None:
        """`connect`, with a broker that cannot be reached turned into an unavailable reply."""
        try:
            await self.connect()
        except Exception as exc:  # noqa: BLE001 - refused, DNS, TLS, auth: to a caller all are "unavailable"
            log.warning("bus connection failed: %s", exc if isinstance(exc, ConnectionError) else type(exc).__name__)
            raise SourceUnavailable(f"the bus is unavailable: {exc}" if isinstance(exc, ConnectionError)
                                    else f"the bus is unavailable ({type(exc).__name__})",
                                    source=system_of(service)) from None

    def resolve(self, correlation_id: str, body: bytes) -> None:
        """A reply arrived: hand it to the call waiting for it (a late one is dropped)."""
        future = self._pending.get(correlation_id)
        if future is None or future.done():
            log.debug("reply to request %s arrived after its caller stopped waiting", correlation_id)
            return
        future.set_result(body)

    # -- worker side -------------------------------------------------------------------------

    async def serve(self, services: Iterable[str], queue: str, handler: Handler) -> Consumer:
        """Consume `queue` (one per source system), routing `services` to it, until stopped.

        The handler returns the reply body; the transport publishes it, then acknowledges.
        Returns as soon as messages flow; `Consumer.stop()` or `close()` ends it. The queue
        `UNROUTED` takes every request no other queue takes (an unknown service, one nobody
        serves), so that a worker answers and records it too.
        """
        await self.connect()
        try:
            consumer = await self._serve(list(services), queue, handler)
        except Exception as exc:
            if (why := _explained(exc, self.url)) is not None:
                raise why from exc
            raise
        self._consumers.append(consumer)
        return consumer

    @staticmethod
    async def run_handler(handler: Handler, delivery: Delivery, correlation_id: str) -> tuple[bytes, bool]:
        """The reply body, and False when the handler crashed (the body is then an internal error)."""
        try:
            return await handler(delivery), True
        except Exception:
            log.exception("handler crashed; request id %s", correlation_id)
            exc = InternalError(f"internal error; request id {correlation_id}")
            return Reply.failure(correlation_id, exc).to_bytes(), False

    # -- what a transport implements ---------------------------------------------------------

    async def dead_letters(self) -> int | None:
        """Messages in the dead-letter queue now; None where there is none (memory://)."""
        return None

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    async def _publish(self, service: str, body: bytes, correlation_id: str, timeout: float) -> None:
        """Hand the request to the broker; raise `SourceUnavailable` when nothing serves `service`.

        The reply must come back through `self.resolve(correlation_id, body)`.
        """

    @abstractmethod
    async def _serve(self, services: list[str], queue: str, handler: Handler) -> Consumer: ...


def _explained(exc: Exception, url: str) -> Exception | None:
    """A broker's refusal as a one-line `BusConnectionError` (ehis.bus.connection); None for anything else."""
    if urlsplit(url).scheme not in ("amqp", "amqps"):
        return None
    from ehis.bus.connection import explain

    return explain(exc, url)


def open_transport(url: str, *, namespace: str = "ehis", prefetch: int = 64,
                   queue_type: QueueType = "quorum") -> Transport:
    """The transport for `url`'s scheme (see TRANSPORT_ALIASES); it connects on first use.
    `queue_type`: of the system queues a worker declares on RabbitMQ (README, "Configuration")."""
    scheme = urlsplit(url).scheme.lower()
    try:
        module_name, _, class_name = TRANSPORT_ALIASES[scheme].partition(":")
    except KeyError:
        known = ", ".join(f"{s}://" for s in TRANSPORT_ALIASES)
        raise ValueError(f"unsupported bus URL scheme {scheme!r}; use one of {known}") from None
    cls: type[Transport] = getattr(importlib.import_module(module_name), class_name)
    return cls(url, namespace=namespace, prefetch=prefetch, queue_type=queue_type)
