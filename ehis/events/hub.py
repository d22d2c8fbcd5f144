"""The hub's side of events: accept what sources send, poll those that cannot push, publish.

    source --push--> inbound endpoint --\
                                         accept: record, store (with the cursor) --> outbox
    source <--poll-- poller (one per source across workers, by lease) --/                |
                                                                                          v
    subscribers <-- <ns>.events.<subsystem> <-- <ns>.events <-- publisher (one, by lease; confirms)

Every step is recorded in the exchange log: an event received (the source's signed message is
its evidence), an event refused (malformed, or a signature that does not verify), and its
delivery to each subsystem the event policy lets receive it. An event is stored before it is
acknowledged to a pushing source or before a polled source's cursor moves past it, and marked
published only once the broker confirmed it: a worker killed anywhere loses nothing, at worst
an event is published twice, which subscribers deduplicate by its id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from ehis.adapters.soap import Caller
from ehis.audit.model import ExchangeRecord
from ehis.bus.events import EventBus
from ehis.cache import ResponseCache
from ehis.calls import CallContext, Deadline, SourceCalls
from ehis.errors import EhisError
from ehis.events.metrics import EventMetrics
from ehis.events.models import Event
from ehis.events.reader import (
    ChangesPage,
    ChangesQuery,
    Read,
    attribute,
    changes_service,
)
from ehis.events.store import EventStore, LeaseLost
from ehis.evidence import Evidence
from ehis.policy import AccessPolicy
from ehis.recording import Recorder
from ehis.sources.spec import Source

log = logging.getLogger(__name__)

EVENTS_CALLER = "ehis-events"  # the hub itself, as the exchange log names it for events (no subsystem is)
PUBLISHER_LEASE = "publisher"
RECORD_IDS = uuid.UUID("5d0b6f0e-7c44-4f7e-9f53-2f3f7d1f0e11")  # namespace of the records' deterministic ids
PUBLISH_BATCH = 100
RETENTION_S = 7 * 86400.0  # published events are forgotten after a week (the exchange log keeps the record)


def holder_id() -> str:
    """This worker, as a lease names it: host, process, and a random part (a restarted process is another)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class EventHub:
    def __init__(self, store: EventStore, bus: EventBus, policy: AccessPolicy, recorder: Recorder,
                 metrics: EventMetrics, *, cache: ResponseCache | None = None, poll_interval: float = 5.0,
                 catch_up_interval: float = 60.0, batch: int = 100, lease_ttl: float = 15.0,
                 holder: str | None = None) -> None:
        self.store = store
        self.bus = bus
        self.policy = policy
        self.recorder = recorder
        self.metrics = metrics
        self.cache = cache
        self.poll_interval = poll_interval
        self.catch_up_interval = catch_up_interval
        self.batch = batch
        self.lease_ttl = lease_ttl
        self.holder = holder or holder_id()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting: dict[str, asyncio.Lock] = {}  # per source: see `accept`

    # -- receiving ---------------------------------------------------------------------------

    async def accept(self, source: Source, reads: Sequence[Read], *, via: Literal["push", "poll"],
                     evidence: Evidence, cursor: str | None = None, lease: str | None = None) -> list[Event]:
        """Record and store what `source` sent; events with a problem are recorded as refused, never stored.

        For a poll, `cursor` moves in the same transaction, under the poller's `lease`. Returns
        the events new to the hub (an event sent again is stored once, recorded once).
        """
        events = [attribute(r, via=via, evidence=evidence) for r in reads if r.problem is None]
        for refused in (r for r in reads if r.problem is not None):
            log.warning("%s event %s refused: %s", source.code, refused.source_event_id, refused.problem)
            await self.refused(source.code, "invalid_input", evidence, key=refused.key, subject=refused.subject)
        # one at a time per source: a push and a catch-up poll (or a push sent twice) with the same
        # new event would both find it not held yet and both record it received
        async with self._accepting.setdefault(source.code, asyncio.Lock()):
            held = await self.store.held([e.id for e in events])
            # recorded before stored: a crash between leaves a record, never an unrecorded event
            await asyncio.gather(*(self._record(e, EVENTS_CALLER, f"event {e.key} received ({via})")
                                   for e in events if e.id not in held))
            new = await self.store.add(events, cursor=(source.code, cursor) if via == "poll" else None,
                                       lease=(poll_lease(source.code), self.holder) if lease else None)
        for event in new:
            self.metrics.received(source.code, via, event)
            await self._invalidate(source, event)
        if new:
            self._wake.set()
        return new

    async def refused(self, source: str, code: str, evidence: Evidence | None, *, key: str | None = None,
                      subject: str | None = None) -> None:
        """An event (or a whole push) the hub would not take: recorded, counted, never delivered."""
        self.metrics.refused(source, code)
        await self.recorder.append(ExchangeRecord(
            request_id=str(uuid.uuid4()), time=datetime.now(UTC), subsystem=EVENTS_CALLER,
            purpose=f"event {key or source} refused", service=key or f"{source}.events", source=source,
            subject=subject, outcome="error", error_code=code, signer=evidence.signer if evidence else None,
            evidence=evidence.digest if evidence else None))

    async def _invalidate(self, source: Source, event: Event) -> None:
        """Stored answers the event made stale (a death: the person's din.person) are dropped."""
        assert source.events is not None
        kind = source.events.kind(event.kind)
        if self.cache is None or kind is None:
            return
        for service in kind.invalidates:
            await self.cache.forget(service, {"fin": event.subject})

    # -- publishing --------------------------------------------------------------------------

    async def publish_pending(self) -> int:
        """Publish what the outbox holds (confirmed), record each delivery, mark them published."""
        pending = await self.store.pending(PUBLISH_BATCH)
        if not pending:
            return 0
        unrecorded = [p for p in pending if not p.recorded]
        if unrecorded:  # recorded before anyone can see them, as a reply is recorded before it is sent
            await asyncio.gather(*(self._record(p.event, subsystem, f"event {p.event.key} delivered", delivered=True)
                                   for p in unrecorded for subsystem in self.policy.subsystems(p.event.key)))
            await self.store.recorded([p.seq for p in unrecorded])
        outcomes = await asyncio.gather(*(self.bus.publish(p.event) for p in pending), return_exceptions=True)
        failed = next((i for i, o in enumerate(outcomes) if isinstance(o, BaseException)), len(pending))
        done = pending[:failed]  # in order: what follows a refused event waits for it, so order holds
        if done:
            await self.store.published([p.seq for p in done])
        for p in done:
            self.metrics.published(p.event, self.policy.subsystems(p.event.key))
        if failed < len(pending):
            raise outcomes[failed]  # type: ignore[misc]
        return len(pending)

    async def _publishing(self) -> None:
        backoff = 0.2
        renewed = -float("inf")  # the lease is renewed every third of its life, not every round
        while True:
            try:
                if time.monotonic() - renewed > self.lease_ttl / 3:
                    if not await self.store.lease(PUBLISHER_LEASE, self.holder, self.lease_ttl):
                        renewed = -float("inf")
                        await self._idle(self.lease_ttl / 3)
                        continue
                    renewed = time.monotonic()
                if await self.publish_pending() < PUBLISH_BATCH:
                    await self._idle(min(1.0, self.lease_ttl / 3))
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broker or database down: wait, then try again
                log.warning("publishing events failed (%s); retrying in %.1f s", _why(exc), backoff)
                self.metrics.publish_failed()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _idle(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    # -- polling -----------------------------------------------------------------------------

    async def poll_once(self, source: Source, calls: SourceCalls) -> ChangesPage | None:
        """One GetChangesSince from the stored cursor, stored with the new cursor; None when
        another worker holds this source's poller."""
        lease = poll_lease(source.code)
        if not await self.store.lease(lease, self.holder, self.lease_ttl):
            return None
        query = ChangesQuery(cursor=await self.store.position(source.code), limit=self.batch)
        ctx = CallContext(Caller(EVENTS_CALLER, purpose="changes since the last poll"),
                          Deadline.after(self.lease_ttl / 2))
        outcome = await calls.call(changes_service(source), query, ctx)
        page = ChangesPage.model_validate(outcome.data)
        evidence = outcome.answer.evidence
        assert evidence is not None, "a source's answer always carries its evidence"
        await self.accept(source, page.events, via="poll", evidence=evidence, cursor=page.cursor, lease=lease)
        self.metrics.polled(source.code)
        return page

    async def _polling(self, source: Source, calls: SourceCalls) -> None:
        # a pushing source is read only to catch up with pushes it gave up on: after an interval
        # (its pushes, retried, come first), and then every interval
        pushes = source.events is not None and source.events.mode == "push"
        interval = self.catch_up_interval if pushes else self.poll_interval
        if pushes:
            await asyncio.sleep(interval)
        while True:
            try:
                page = await self.poll_once(source, calls)
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.info("another worker polls %s now", source.code)
                page = None
            except EhisError as exc:  # the source is down, slow or its circuit open: as for a request
                log.warning("polling %s failed: %s", source.code, exc.code.value)
                self.metrics.poll_failed(source.code, exc.code.value)
                page = None
            except Exception as exc:  # noqa: BLE001 - the database: try again at the next turn
                log.warning("polling %s failed (%s)", source.code, _why(exc))
                self.metrics.poll_failed(source.code, "internal")
                page = None
            if page is None or not page.more:
                await asyncio.sleep(interval)

    # -- running -----------------------------------------------------------------------------

    async def _monitoring(self, every: float = 5.0) -> None:
        """The gauges a scrape must not wait for (the outbox, the subscribers' queues), and retention."""
        purged_at = 0.0
        while True:
            try:
                stats = await self.store.stats()
                self.metrics.outbox_pending.set(stats.pending)
                self.metrics.outbox_oldest.set(time.time() - stats.oldest_pending_at if stats.oldest_pending_at else 0)
                for subsystem in self.policy.subscribers():
                    depth = await self.bus.depth(subsystem)
                    if depth is not None:
                        self.metrics.queue_depth.labels(subscriber=subsystem).set(depth)
                if time.time() - purged_at > 3600:
                    await self.purge()
                    purged_at = time.time()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - next time
                log.debug("event gauges not refreshed (%s)", type(exc).__name__)
            await asyncio.sleep(every)

    def start(self, polled: Sequence[Source], calls: SourceCalls) -> None:
        self._tasks.append(asyncio.create_task(self._publishing(), name="events-publisher"))
        self._tasks.append(asyncio.create_task(self._monitoring(), name="events-monitor"))
        for source in polled:
            self._tasks.append(asyncio.create_task(self._polling(source, calls), name=f"events-poll-{source.code}"))
        self._polled = [s.code for s in polled]

    async def stop(self) -> None:
        """Stop the loops and hand the leases back, so another worker takes over at once."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for name in [PUBLISHER_LEASE, *(poll_lease(code) for code in getattr(self, "_polled", []))]:
            try:
                await self.store.release(name, self.holder)
            except Exception as exc:  # noqa: BLE001 - it lapses on its own
                log.warning("could not release the lease %s (%s)", name, _why(exc))

    async def purge(self) -> int:
        return await self.store.purge(time.time() - RETENTION_S)

    async def _record(self, event: Event, subsystem: str, purpose: str, *, delivered: bool = False) -> None:
        received_id = uuid.uuid5(RECORD_IDS, f"received {event.id}")
        await self.recorder.append(ExchangeRecord(
            request_id=str(uuid.uuid5(RECORD_IDS, f"delivered {event.id} {subsystem}")) if delivered
            else str(received_id),
            parent_id=str(received_id) if delivered else None, time=datetime.now(UTC), subsystem=subsystem,
            purpose=purpose, service=event.key, source=event.system, subject=event.subject, outcome="ok",
            signer=event.signed_by, evidence=event.evidence))


def poll_lease(code: str) -> str:
    return f"poll:{code}"


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200] if isinstance(exc, EhisError) else type(exc).__name__
