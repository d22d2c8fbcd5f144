"""ExchangeLog: the statute's journal of every exchange, hash-chained, with group commit.

`append` is on every request's path and must not return before the record is durable, yet one
transaction per record would cap the hub at the disk's fsync rate. So appends are queued and
one writer task commits whatever has queued up while the previous transaction was in flight,
in a single transaction: under load the batches grow by themselves, idle there is no added wait.

A transaction costs about as much CPU as a dozen records (an fsync, two thread hand-overs), and
a worker at a few hundred requests a second would still commit them one or two at a time. So,
like PostgreSQL's commit_delay with commit_siblings, the writer waits up to `commit_delay` for
the records of the other requests in hand (`expecting`) before it commits; a lone request (one
caller at a time) never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from ehis.audit.archive import archive, archived_records, verify_archives
from ehis.audit.backend import Backend, Prepared, backend_for
from ehis.audit.chain import canonical, check_chain, utc
from ehis.audit.model import (
    ArchiveResult,
    ExchangeRecord,
    LogQuery,
    SourceStats,
    StoredRecord,
    SubjectAccess,
    SubjectReport,
    VerifyReport,
)
from ehis.audit.outages import OutageStore

log = logging.getLogger(__name__)  # counts, seqs and error types only: never a subject, user or purpose

_Pending = tuple[Prepared, "asyncio.Future[StoredRecord]"]


class ExchangeLog:
    """The exchange log on one database (see `open_log`); `outages` shares its connections."""

    def __init__(self, backend: Backend, *, max_batch: int = 512, commit_delay: float = 0.0) -> None:
        self.backend = backend
        self.commit_delay = commit_delay  # seconds a batch may wait for records of requests in hand
        self._expected = 0  # requests in hand whose records will follow (`expecting`)
        self.outages = OutageStore(backend)
        self.batches = 0  # transactions committed by this instance: group commit keeps it below the records
        self._max_batch = max_batch
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._idle = asyncio.Event()  # no batch in flight: what was handed to the database has landed or failed
        self._idle.set()

    async def open(self) -> None:
        await self.backend.open()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="exchange-log-writer")
        await self.outages.start()
        log.info("exchange log open (%s)", self.backend.name)

    async def close(self) -> None:
        """Write what is queued, then disconnect."""
        self._closing = True
        await self.outages.stop()
        if self._writer is not None:
            self._wakeup.set()
            await self._writer
            self._writer = None
        await self.backend.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- the hot path --------------------------------------------------------------------------

    async def append(self, record: ExchangeRecord) -> StoredRecord:
        """Chain and store `record`; returns once its transaction has committed."""
        if self._writer is None or self._closing:
            raise RuntimeError("the exchange log is not open")
        if record.time.tzinfo is not UTC:
            record = record.model_copy(update={"time": utc(record.time)})
        future: asyncio.Future[StoredRecord] = asyncio.get_running_loop().create_future()
        self._pending.append(((record, canonical(record)), future))  # hashing is done here, outside the lock
        self._wakeup.set()
        return await future

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Around handling one request whose record will be appended: the writer may wait for it."""
        self._expected += 1
        try:
            yield
        finally:
            self._expected -= 1

    async def _write_loop(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather_siblings()
            taken = [self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))]
            # a caller that gave up before its batch left (its append timed out: the record went to the
            # spool, or the caller was told it was not recorded) must not have it written here too
            batch = [(prepared, future) for prepared, future in taken if not future.cancelled()]
            if not batch:
                continue
            self._idle.clear()
            try:
                stored = await self.backend.append_batch([prepared for prepared, _ in batch])
            except Exception as exc:  # noqa: BLE001 - the callers get it; the writer carries on
                log.warning("exchange log batch of %d records failed: %s", len(batch), type(exc).__name__)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            finally:
                self._idle.set()
            self.batches += 1
            for (_, future), record in zip(batch, stored, strict=True):
                if not future.done():  # a caller that gave up still has its record written
                    future.set_result(record)

    async def _gather_siblings(self) -> None:
        """Wait up to `commit_delay` while requests in hand have not yet appended their records."""
        if self.commit_delay <= 0 or self._closing:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + self.commit_delay
        while len(self._pending) < min(self._expected, self._max_batch) and not self._closing:
            left = until - loop.time()
            if left <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._wakeup.wait()

    async def settled(self) -> None:
        """Return once no batch is in flight (one sent to a frozen database may still commit)."""
        await self._idle.wait()

    async def recorded(self, request_ids: list[str]) -> set[str]:
        """Which of `request_ids` already have a record in the live log."""
        found: set[str] = set()
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start:start + 500]
            rows = await self.backend.fetch(
                f"SELECT request_id FROM exchange_log WHERE request_id IN ({', '.join('?' for _ in chunk)})", chunk)
            found.update(row[0] for row in rows)
        return found

    async def ping(self) -> None:
        """Raise unless the writer runs and the database answers (for health checks)."""
        if self._writer is None or self._writer.done():
            raise RuntimeError("the exchange log writer is not running")
        await self.backend.fetch("SELECT 1")

    # -- reading -------------------------------------------------------------------------------

    async def verify(self) -> VerifyReport:
        """Walk the live log from the last archive's anchor (or genesis) in one read snapshot."""
        async with self.backend.snapshot() as snapshot:
            report = await check_chain(snapshot.records(), snapshot.anchor.seq, snapshot.anchor.hash,
                                       snapshot.seq_of_hash)
        log.info("exchange log verified: ok=%s checked=%d first_bad_seq=%s",
                 report.ok, report.checked, report.first_bad_seq)
        return report

    async def search(self, query: LogQuery) -> list[StoredRecord]:
        """Newest first."""
        return await self.backend.search(query)

    async def subject_report(self, subject: str, since: datetime | None = None,
                             until: datetime | None = None, *, archive_dir: Path | None = None) -> SubjectReport:
        """Who accessed `subject`'s data, when, through which service, why, and with what result
        (from the archives in `archive_dir` too, when given)."""
        records = await self.backend.subject_records(subject, since, until)
        if archive_dir is not None:
            records = await archived_records(archive_dir, subject, since, until) + records
        accesses = [SubjectAccess.model_validate(r.model_dump(include=set(SubjectAccess.model_fields)))
                    for r in records]
        return SubjectReport(subject=subject, since=since, until=until, generated_at=datetime.now(UTC),
                             accesses=accesses)

    async def source_stats(self, since: datetime) -> list[SourceStats]:
        """Per source since `since`: exchanges, errors, last success (from every worker's records)."""
        return await self.backend.source_stats(since)

    # -- retention -----------------------------------------------------------------------------

    async def archive(self, before: datetime, directory: Path, *, compress: bool = True) -> ArchiveResult:
        """Move the chain's prefix up to the last record older than `before` to an archive file."""
        return await archive(self.backend, before, directory, compress=compress)

    async def verify_archives(self, directory: Path) -> VerifyReport:
        """Check every archive in `directory`, their digest chain, and the live log after them."""
        return await verify_archives(self.backend, directory)


def open_log(url: str, *, max_batch: int = 512, commit_delay: float = 0.0) -> ExchangeLog:
    """The log for `sqlite:///path` or `postgresql://…`; use `async with` (or `await open()`/`close()`)."""
    return ExchangeLog(backend_for(url), max_batch=max_batch, commit_delay=commit_delay)
