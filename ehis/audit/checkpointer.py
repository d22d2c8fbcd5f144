"""The hub's checkpoint task: sign the head every `interval` seconds or `records` records, on
demand and when the hub stops, and have the unstamped checkpoints time-stamped in batches.

Stamping asks the TSA for the newest checkpoint not yet covered; its token covers the earlier
ones too, through their `previous` digests, so an outage of the TSA costs one request when it
comes back, not one per checkpoint missed. While none can be had, `delay()` grows (shown in
/metrics and on the admin page) and, past `max_unstamped` seconds, `overdue()` is true: the
hub then stops answering, since it could no longer show when its records were written.
Several workers may run one each on a shared log: a checkpoint is stored only if no other
worker's came first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from ehis.audit.backend import HEAD, Backend
from ehis.audit.checkpoints import CheckpointError, export, make_checkpoint
from ehis.audit.model import Checkpoint
from ehis.audit.timestamps import TimestampError, TsaClient
from ehis.audit.xmlsig import DocumentSigner

log = logging.getLogger(__name__)

STAMP_RETRY_MAX = 60.0
STOP_STAMP_TIMEOUT = 3.0


class Checkpointer:
    def __init__(self, backend: Backend, signer: DocumentSigner, *, tsa: TsaClient | None = None,
                 log_name: str = "ehis", interval: float = 600.0, records: int = 10_000,
                 max_unstamped: float | None = None, tick: float = 1.0, export_dir: Path | None = None) -> None:
        self.backend = backend
        self.signer = signer
        self.tsa = tsa
        self.log_name = log_name
        self.interval = interval
        self.records = records
        self.max_unstamped = max_unstamped
        self.tick = tick
        self.export_dir = export_dir
        self.made = 0  # checkpoints this instance stored
        self.stamps = 0  # time-stamps this instance obtained
        self.last_error: str | None = None  # why the last stamp failed (no personal data: a type or a status)
        self.unstamped_since: datetime | None = None  # time of the oldest checkpoint no token covers
        self._last_seq = 0
        self._last_at = time.monotonic()
        self._next_stamp = 0.0
        self._failures = 0
        self._task: asyncio.Task[None] | None = None

    # -- on demand -----------------------------------------------------------------------------

    async def checkpoint(self, *, stamp: bool = True) -> Checkpoint | None:
        """Sign the head now if records came since the last checkpoint, then (if asked) stamp."""
        made = await make_checkpoint(self.backend, self.signer, self.log_name)
        self._last_at = time.monotonic()
        if made is not None:
            self.made += 1
            log.info("checkpoint signed at seq %d", made.seq)
            if self.export_dir is not None:
                export(made, self.export_dir)
        rows = await self.backend.fetch("SELECT COALESCE(MAX(seq), 0) FROM exchange_checkpoint")
        self._last_seq = rows[0][0]  # ours, or another worker's that came first
        if stamp and self.tsa is not None:
            await self.stamp()
        await self.refresh()
        return made

    async def stamp(self) -> Checkpoint | None:
        """Time-stamp the newest checkpoint no token covers; None if there is none or the TSA fails."""
        if self.tsa is None:
            return None
        newest, _ = await self.backend.unstamped()
        if newest is None:
            return None
        try:
            stamp = await self.tsa.stamp(newest.document)
        except TimestampError as exc:
            self._failures += 1
            self._next_stamp = time.monotonic() + min(STAMP_RETRY_MAX, 2.0 ** self._failures)
            if self.last_error != str(exc):
                log.warning("checkpoint at seq %d not time-stamped: %s", newest.seq, exc)
            self.last_error = str(exc)
            await self.refresh()
            return None
        await self.backend.set_token(newest.seq, stamp.token, stamp.time)
        self._failures, self._next_stamp, self.last_error = 0, 0.0, None
        self.stamps += 1
        await self.refresh()
        return newest.model_copy(update={"token": stamp.token, "stamped_at": stamp.time})

    async def refresh(self) -> None:
        _, self.unstamped_since = await self.backend.unstamped()

    # -- what monitoring reads -----------------------------------------------------------------

    def delay(self, now: datetime | None = None) -> float:
        """Seconds the oldest checkpoint has waited for a time-stamp (0: none waits, or no TSA)."""
        if self.tsa is None or self.unstamped_since is None:
            return 0.0
        return max(0.0, ((now or datetime.now(UTC)) - self.unstamped_since).total_seconds())

    def overdue(self) -> bool:
        return self.max_unstamped is not None and self.delay() > self.max_unstamped

    # -- the background task -------------------------------------------------------------------

    async def start(self) -> None:
        last = await self.backend.last_checkpoint()
        self._last_seq = last.seq if last else 0
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="exchange-log-checkpoints")

    async def stop(self) -> None:
        """Stop the task, then sign the head one last time and try (briefly) to stamp it."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.checkpoint(stamp=False)
            if self.tsa is not None:
                await asyncio.wait_for(self.stamp(), STOP_STAMP_TIMEOUT)
        except (CheckpointError, TimeoutError) as exc:
            log.warning("no final checkpoint: %s", exc)
        except Exception as exc:  # noqa: BLE001 - stopping must finish; the database may be gone
            log.warning("no final checkpoint: %s", type(exc).__name__)
        if self.tsa is not None:
            await self.tsa.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                await self._step()
            except CheckpointError as exc:
                log.error("%s", exc)
            except Exception as exc:  # noqa: BLE001 - the database may be down a while: try again next tick
                log.warning("checkpoint task: %s", type(exc).__name__)

    async def _step(self) -> None:
        rows = await self.backend.fetch(HEAD)
        head = rows[0][0] if rows else 0
        due = head - self._last_seq >= self.records or (
            head > self._last_seq and time.monotonic() - self._last_at >= self.interval)
        if due:
            await self.checkpoint(stamp=False)
        if self.tsa is not None and self.unstamped_since is not None and time.monotonic() >= self._next_stamp:
            await self.stamp()
