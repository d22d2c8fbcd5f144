"""Events on the bus: the hub publishes, each subsystem consumes its own queue.

    <ns>.events           topic exchange; routing key = the event's `<system>.<kind>`
    <ns>.events.<sub>     a durable quorum queue per subsystem, bound only to the kinds the
                          event policy lets it receive; a delivery limit, then dead-lettered to
    <ns>.events.dlx       fanout exchange -> <ns>.events.dead, kept for an operator

Publishing waits for the broker's confirm (the outbox marks an event published only then);
consuming is explicit: a subscriber acknowledges each event, or rejects it back to its queue
(counted: after EVENT_DELIVERY_LIMIT deliveries it is dead-lettered), and an event it held when
it went away is delivered again. Delivery is at least once; `Event.id` deduplicates. Bodies are
the JSON of `ehis.events.models.Event`, never pickled. On RabbitMQ the message's `user_id` is the
publisher's login, which the broker checks: a subscriber can tell the hub's worker published it.

`memory://` plays the same in one process (the embedded hub), with its bindings declared by the
hub from its event policy; `amqp://` queues and bindings are made by `ehis broker setup` (and
re-declared by each worker on start: `declare_events`).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from ehis.errors import SourceUnavailable
from ehis.events.models import MAX_EVENT_BYTES, Event

log = logging.getLogger(__name__)

# Returns of one event by one subscriber (a reject, a lost consumer) before it is dead-lettered.
# RabbitMQ 3.x counts every return, those of messages prefetched but never seen by a consumer that
# went away too, so the limit leaves room for restarts (4.x's default is 20 as well).
EVENT_DELIVERY_LIMIT = 20


def event_names(namespace: str, subsystem: str | None = None) -> dict[str, str]:
    names = {"exchange": f"{namespace}.events", "dlx": f"{namespace}.events.dlx", "dead": f"{namespace}.events.dead"}
    if subsystem is not None:
        names["queue"] = f"{namespace}.events.{subsystem}"
    return names


class Received:
    """One event as a subscriber receives it; `ack` once acted on, or `reject` to have it again later."""

    def __init__(self, event: Event, deliveries: int, settle: Any) -> None:
        self.event = event
        self.deliveries = deliveries  # 1 the first time; more when it came back (a reject, a lost consumer)
        self._settle = settle
        self._acked: list[Any] = []
        self.settled = False

    def on_ack(self, callback: Any) -> None:
        """Call `callback(event.id)` once this event is acknowledged."""
        self._acked.append(callback)

    async def ack(self) -> None:
        await self._done(True, False)
        for callback in self._acked:
            callback(self.event.id)

    async def reject(self, *, requeue: bool = True) -> None:
        """Back to the queue (counted towards the delivery limit), or straight to the dead letters."""
        await self._done(False, requeue)

    async def _done(self, ack: bool, requeue: bool) -> None:
        if not self.settled:
            self.settled = True
            await self._settle(ack, requeue)


class SeenEvents:
    """The ids of the last events a subscriber acknowledged, to skip one published again.

    In memory by default (a restarted subscriber may see an event again: its handling should be
    idempotent by `Event.id`); `path` keeps them in a file of one id per line, appended as they
    come and trimmed to `keep` at start.
    """

    def __init__(self, path: str | None = None, *, keep: int = 100_000) -> None:
        from collections import OrderedDict
        from pathlib import Path

        self._ids: OrderedDict[str, None] = OrderedDict()
        self._keep = keep
        self._path = Path(path) if path else None
        if self._path is not None and self._path.exists():
            for line in self._path.read_text(encoding="utf-8").splitlines()[-keep:]:
                self._ids[line.strip()] = None
            self._path.write_text("".join(f"{i}\n" for i in self._ids), encoding="utf-8")

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._keep:
            self._ids.popitem(last=False)
        if self._path is not None:
            with self._path.open("a", encoding="utf-8") as out:
                out.write(f"{event_id}\n")


class EventBus(ABC):
    def __init__(self, url: str, *, namespace: str = "ehis") -> None:
        self.url = url
        self.namespace = namespace

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def declare(self, receivers: Mapping[str, Sequence[str]]) -> None:
        """Each subsystem's queue, bound to its patterns (`edliyye.death`, `dmx.*`)."""

    @abstractmethod
    async def publish(self, event: Event) -> None:
        """Hand one event to the broker and wait for its confirm; SourceUnavailable if it will not take it."""

    @abstractmethod
    def subscribe(self, subsystem: str, *, prefetch: int = 8) -> AsyncIterator[Received]:
        """The events of `subsystem`'s queue as they come; unsettled ones go back when the iteration ends."""

    @abstractmethod
    async def depth(self, subsystem: str) -> int | None:
        """Events waiting in `subsystem`'s queue (None: it cannot be told here)."""


def open_event_bus(url: str, *, namespace: str = "ehis") -> EventBus:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryEventBus(url, namespace=namespace)
    if scheme in ("amqp", "amqps"):
        from ehis.bus.amqp_events import AmqpEventBus

        return AmqpEventBus(url, namespace=namespace)
    raise ValueError(f"no event bus for {scheme!r} URLs")


def decode(body: bytes) -> Event | None:
    """The event in a message body, or None for a body that is not one (dead-lettered, logged by id only)."""
    if len(body) > MAX_EVENT_BYTES:
        return None
    try:
        return Event.from_bytes(body)
    except ValueError:
        return None


def matches(pattern: str, key: str) -> bool:
    """AMQP topic matching for the patterns the policy uses: exact keys and `<system>.*`."""
    if pattern.endswith(".*"):
        return key.split(".", 1)[0] == pattern[:-2] and "." in key
    return pattern == key


# -- memory:// --------------------------------------------------------------------------------


@dataclass
class _Queue:
    patterns: set[str] = field(default_factory=set)
    ready: deque[tuple[bytes, int]] = field(default_factory=deque)  # (body, deliveries so far)
    signal: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Exchange:
    queues: dict[str, _Queue] = field(default_factory=dict)
    dead: list[bytes] = field(default_factory=list)


_EXCHANGES: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Exchange]] = WeakKeyDictionary()


class MemoryEventBus(EventBus):
    """One process's event exchange, keyed by loop and URL like the memory request bus."""

    async def connect(self) -> None:
        parts = urlsplit(self.url)
        key = f"{parts.hostname or ''}{parts.path}/{self.namespace}"
        self._exchange = _EXCHANGES.setdefault(asyncio.get_running_loop(), {}).setdefault(key, _Exchange())

    async def close(self) -> None:
        pass

    @property
    def dead(self) -> list[bytes]:
        return self._exchange.dead

    async def declare(self, receivers: Mapping[str, Sequence[str]]) -> None:
        for subsystem, patterns in receivers.items():
            queue = self._exchange.queues.setdefault(subsystem, _Queue())
            queue.patterns = set(patterns)

    async def publish(self, event: Event) -> None:
        body = event.to_bytes()
        for queue in self._exchange.queues.values():
            if any(matches(p, event.key) for p in queue.patterns):
                queue.ready.append((body, 0))
                queue.signal.set()

    async def subscribe(self, subsystem: str, *, prefetch: int = 8) -> AsyncIterator[Received]:
        queue = self._exchange.queues.get(subsystem)
        if queue is None:
            raise SourceUnavailable(f"no event queue for {subsystem} (it receives no event kind)")
        held: set[Received] = set()
        try:
            while True:
                while not queue.ready:
                    queue.signal.clear()
                    await queue.signal.wait()
                body, count = queue.ready.popleft()
                event = decode(body)
                if event is None:
                    self._exchange.dead.append(body)
                    continue
                received = Received(event, count + 1, self._settler(queue, body, count + 1, held))
                held.add(received)
                yield received
        finally:
            for received in held:  # what was never settled goes back, counted, as on a lost channel
                if not received.settled:
                    self._requeue(queue, received.event.to_bytes(), received.deliveries)

    def _settler(self, queue: _Queue, body: bytes, deliveries: int, held: set[Received]) -> Any:
        async def settle(ack: bool, requeue: bool) -> None:
            held.difference_update({r for r in held if r.settled})
            if ack:
                return
            if requeue:
                self._requeue(queue, body, deliveries)
            else:
                self._exchange.dead.append(body)
        return settle

    def _requeue(self, queue: _Queue, body: bytes, deliveries: int) -> None:
        if deliveries > EVENT_DELIVERY_LIMIT:  # as a quorum queue's limit: it counts the returns
            self._exchange.dead.append(body)
            return
        queue.ready.appendleft((body, deliveries))
        queue.signal.set()

    async def depth(self, subsystem: str) -> int | None:
        queue = self._exchange.queues.get(subsystem)
        return None if queue is None else len(queue.ready)
