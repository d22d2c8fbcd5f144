"""OutageStore: when each source was down, from the circuit breakers' state changes.

Breakers call `breaker_changed` synchronously from the event loop, mid-request: it only queues
the event. A background task writes the events in order, retrying a while if the database is
briefly unavailable. OPEN starts an outage unless one is ongoing for that source (across every
worker: a partial unique index), CLOSED ends it, HALF_OPEN changes nothing.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from datetime import datetime
from types import TracebackType
from typing import Self

from ehis.adapters.events import BreakerEvent, BreakerState
from ehis.audit.backend import Backend, backend_for
from ehis.audit.model import Outage

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


class OutageStore:
    """Outages in the exchange log's database; `open_outages(url)`, or `ExchangeLog.outages`."""

    def __init__(self, backend: Backend, *, owns_backend: bool = False) -> None:
        self._backend = backend
        self._owns_backend = owns_backend
        self._queue: asyncio.Queue[BreakerEvent] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the background writer (the backend is already open)."""
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="outage-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop the writer."""
        if self._writer is None:
            return
        await self.flush()
        self._writer.cancel()
        try:
            await self._writer
        except asyncio.CancelledError:
            pass
        self._writer = None

    async def open(self) -> None:
        if self._owns_backend:
            await self._backend.open()
        await self.start()

    async def close(self) -> None:
        await self.stop()
        if self._owns_backend:
            await self._backend.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def breaker_changed(self, event: BreakerEvent) -> None:
        """Queue `event` for the writer; never blocks, never raises on a database problem."""
        if event.state is not BreakerState.HALF_OPEN:
            self._queue.put_nowait(event)

    async def flush(self) -> None:
        """Wait until every queued event is written (or given up on)."""
        await self._queue.join()

    async def list(self, source: str | None = None, since: datetime | None = None) -> builtins.list[Outage]:
        """Newest first; `since` keeps the outages that were still going on at or after it."""
        return await self._backend.outages(source, since)

    async def _write_loop(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._write(event)
            finally:
                self._queue.task_done()

    async def _write(self, event: BreakerEvent) -> None:
        for delay in (*RETRY_DELAYS, None):
            try:
                if event.state is BreakerState.OPEN:
                    await self._backend.start_outage(event.source, event.at, event.reason)
                else:
                    await self._backend.end_outage(event.source, event.at)
                return
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not stop the writer
                if delay is None:
                    log.error("outage of %s (%s) not recorded: %s", event.source, event.state, type(exc).__name__)
                    return
                await asyncio.sleep(delay)


def open_outages(url: str) -> OutageStore:
    """An outage store with its own connection to `url`; use `async with` (or `await open()`/`close()`)."""
    return OutageStore(backend_for(url), owns_backend=True)
