"""Appends that are durable by a deadline: the database if it takes the record in time, else the spool.

A record is never lost and never late: `append` returns once the record is committed to the
database or fsynced to the local spool, within the time it is given (what is left of the caller's
deadline). Once the database has failed or frozen, records go straight to the spool (so nobody waits
for a database that does not answer) until a background task has replayed the spool into the chain,
in order, and found it empty.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ehis.audit.log import ExchangeLog
from ehis.audit.model import ExchangeRecord
from ehis.audit.spool import Spool

log = logging.getLogger(__name__)  # counts and error types only


class RecordNotDurable(RuntimeError):
    """Neither the database nor the spool took the record: its reply must not be sent."""


class DurableLog:
    """`log` with `spool` behind it. `timeout` caps how long an append waits for the database."""

    def __init__(self, log: ExchangeLog, spool: Spool | None, *, timeout: float = 2.0,
                 retry_interval: float = 0.5, orphan_interval: float = 30.0) -> None:
        self.log = log
        self.spool = spool
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.orphan_interval = orphan_interval
        self.degraded = False  # the database failed: records go to the spool until it is replayed
        self.spooled = 0  # records written to the spool by this process
        self.replayed = 0  # spooled records this process wrote into the chain
        self._degraded_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        if self.spool is not None:
            self.spool.open()
            self._task = asyncio.get_running_loop().create_task(self._replay_loop(), name="log-spool-replay")

    async def stop(self) -> None:
        """Stop replaying; one last try to empty the spool if the database answers."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
            try:
                async with asyncio.timeout(self.timeout):
                    await self._replay_once()
            except Exception as exc:  # noqa: BLE001 - what is left stays in the spool for the next worker
                log.warning("log spool not emptied at shutdown: %s", type(exc).__name__)
        if self.spool is not None:
            await self.spool.drained()
            self.spool.close()

    async def append(self, record: ExchangeRecord, budget: float | None = None) -> None:
        """Make `record` durable within `budget` seconds (None: the configured timeout)."""
        if self.spool is None:
            await self.log.append(record)
            return
        if not self.degraded:
            bound = self.timeout if budget is None else max(0.05, min(self.timeout, budget))
            try:
                async with asyncio.timeout(bound):
                    await self.log.append(record)
                return
            except TimeoutError:
                if bound >= self.timeout / 2:  # the database is frozen, not just the caller late
                    self._degrade(f"no answer within {bound:.2f} s")
            except Exception as exc:  # noqa: BLE001 - down, refused, broken: the spool takes it
                self._degrade(type(exc).__name__)
        try:
            await self.spool.append(record)
        except OSError as exc:
            raise RecordNotDurable(f"neither the database nor the spool took the record ({exc})") from exc
        self.spooled += 1
        self._wake.set()

    def _degrade(self, why: str) -> None:
        if not self.degraded:
            self.degraded = True
            self._degraded_since = time.monotonic()
            log.warning("exchange log database unusable (%s): records go to the local spool", why)
        self._wake.set()

    async def _replay_loop(self) -> None:
        quiet = 0.0
        while True:
            try:
                async with asyncio.timeout(self.retry_interval if self._needs_replay() else self.orphan_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._needs_replay() and time.monotonic() - quiet < self.orphan_interval:
                continue
            quiet = time.monotonic()
            try:
                await self._replay_once()
            except Exception as exc:  # noqa: BLE001 - the database is still away: try again shortly
                log.debug("log spool replay deferred: %s", type(exc).__name__)
                await asyncio.sleep(self.retry_interval)

    def _needs_replay(self) -> bool:
        return self.degraded or (self.spool is not None and self.spool.holding > 0)

    async def _replay_once(self) -> None:
        """Replay every free segment; leave degraded mode once the spool is empty."""
        assert self.spool is not None
        if not self._needs_replay() and not self.spool.segments():
            return
        async with asyncio.timeout(self.timeout):
            await self.log.ping()
            await self.log.settled()  # a batch a frozen database held has committed (or failed) by now
        while True:
            await self.spool.seal()
            count = await self.spool.replay(self._write)
            if self.spool.holding == 0 and count == 0:
                break
        if self.degraded:
            took = time.monotonic() - (self._degraded_since or time.monotonic())
            self.degraded = False
            log.warning("exchange log database back after %.1f s: the spool is replayed (%d records so far)",
                        took, self.replayed)

    async def _write(self, records: list[ExchangeRecord]) -> None:
        """Into the chain, in order, skipping what the log already holds (a replay after a crash,
        or a batch the frozen database committed after its caller had spooled it)."""
        async with asyncio.timeout(max(self.timeout, 10.0)):
            present = await self.log.recorded([r.request_id for r in records])
            fresh = []
            for record in records:
                if record.request_id not in present:
                    present.add(record.request_id)
                    fresh.append(record)
            await asyncio.gather(*(self.log.append(r) for r in fresh))
        self.replayed += len(fresh)
