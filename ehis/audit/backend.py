"""What the log needs from a database, and the SQL both databases share.

A backend does only what differs between SQLite and PostgreSQL: connecting, the locked batch
transaction that extends the chain, a consistent read snapshot, and the archive commit. The
queries (search, subject report, stats, outages) are written once here with `?` placeholders.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ehis.audit.chain import GENESIS, link
from ehis.audit.model import ExchangeRecord, LogQuery, Outage, SourceStats, StoredRecord
from ehis.errors import CALLER_ERRORS, SOURCE_FAILURES

#: URL scheme -> "module:class", imported on first use (SQLite never imports asyncpg).
BACKENDS: dict[str, str] = {
    "sqlite": "ehis.audit.sqlite:SqliteBackend",
    "postgresql": "ehis.audit.postgres:PostgresBackend",
    "postgres": "ehis.audit.postgres:PostgresBackend",
}

COLUMNS = (
    "seq", "request_id", "time", "subsystem", "official", "purpose", "service", "source", "subject",
    "outcome", "error_code", "cache", "duration_ms", "signer", "evidence", "parent_id", "endpoint",
    "prev_hash", "hash",
)
#: Columns added after the first release, with their SQL type: `open` adds them to an older database.
ADDED_COLUMNS = (("parent_id", "text"), ("endpoint", "text"))
SELECT = f"SELECT {', '.join(COLUMNS)} FROM exchange_log"
INSERT = f"INSERT INTO exchange_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
#: The chain's head: the last live record, or the last archive's anchor when none is left.
HEAD = (
    "SELECT seq, hash FROM (SELECT seq, hash FROM exchange_log ORDER BY seq DESC LIMIT 1) AS live"
    " UNION ALL SELECT seq, hash FROM (SELECT seq, hash FROM exchange_anchor ORDER BY seq DESC LIMIT 1) AS anchor"
    " ORDER BY seq DESC LIMIT 1"
)
LATEST_ANCHOR = "SELECT seq, hash, file, digest FROM exchange_anchor ORDER BY seq DESC LIMIT 1"

#: A record ready for the chain: its time already in UTC, and its canonical JSON.
Prepared = tuple[ExchangeRecord, bytes]


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the live log starts: the last archived record's seq and hash, and that archive file."""

    seq: int = 0
    hash: str = GENESIS
    file: str | None = None
    digest: str | None = None


class Snapshot(ABC):
    """One consistent view of the log (a read transaction), for walks that must not see a moving table."""

    anchor: Anchor

    @abstractmethod
    def records(self, upto: int | None = None) -> AsyncIterator[StoredRecord]:
        """Every live record in seq order (up to `upto`), read in chunks."""

    @abstractmethod
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    async def seq_of_hash(self, digest: str) -> int | None:
        rows = await self.fetch("SELECT seq FROM exchange_log WHERE hash = ? ORDER BY seq LIMIT 1", (digest,))
        return rows[0][0] if rows else None

    async def anchors(self) -> list[Anchor]:
        rows = await self.fetch("SELECT seq, hash, file, digest FROM exchange_anchor ORDER BY seq")
        return [Anchor(*row) for row in rows]


class Backend(ABC):
    """One database holding the exchange log, the archive anchors and the outages."""

    name: str

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the schema if it is missing (safe to race with other processes)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def append_batch(self, batch: Sequence[Prepared]) -> list[StoredRecord]:
        """Extend the chain by `batch` in one transaction, serialised against every other writer."""

    @abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[Snapshot]: ...

    @abstractmethod
    async def commit_archive(self, expected: Anchor, new: Anchor, archived_at: datetime) -> bool:
        """Delete records up to `new.seq` and record `new`, unless another archive ran since `expected`."""

    @abstractmethod
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    @abstractmethod
    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        """One statement in its own committed transaction."""

    @abstractmethod
    def time_param(self, moment: datetime) -> Any:
        """A time as this database stores it."""

    @abstractmethod
    def time_value(self, stored: Any) -> datetime: ...

    # -- chain rows ----------------------------------------------------------------------------

    def chain_rows(self, batch: Sequence[Prepared], seq: int, prev: str) -> tuple[list[tuple], list[StoredRecord]]:
        """The rows to insert after head (`seq`, `prev`), and the records as the callers get them."""
        rows: list[tuple] = []
        stored: list[StoredRecord] = []
        for record, body in batch:
            seq += 1
            digest = link(prev, body)
            r = record
            rows.append((seq, r.request_id, self.time_param(r.time), r.subsystem, r.user, r.purpose, r.service,
                         r.source, r.subject, r.outcome, r.error_code, r.cache, float(r.duration_ms), r.signer,
                         r.evidence, r.parent_id, r.endpoint, prev, digest))
            stored.append(StoredRecord.model_construct(**dict(record), seq=seq, prev_hash=prev, hash=digest))
            prev = digest
        return rows, stored

    def record(self, row: Sequence[Any]) -> StoredRecord:
        """A row in COLUMNS order as a record, unvalidated: a tampered value must reach the hash check."""
        (seq, request_id, time, subsystem, official, purpose, service, source, subject, outcome, error_code,
         cache, duration_ms, signer, evidence, parent_id, endpoint, prev_hash, digest) = row
        return StoredRecord.model_construct(
            seq=seq, request_id=request_id, time=self.time_value(time), subsystem=subsystem, user=official,
            purpose=purpose, service=service, source=source, subject=subject, outcome=outcome,
            error_code=error_code, cache=cache, duration_ms=duration_ms, signer=signer, evidence=evidence,
            parent_id=parent_id, endpoint=endpoint, prev_hash=prev_hash, hash=digest,
        )

    # -- shared queries ------------------------------------------------------------------------

    async def search(self, query: LogQuery) -> list[StoredRecord]:
        where, args = self._where(query.subject, query.since, query.until, subsystem=query.subsystem,
                                  service=query.service, outcome=query.outcome, error_code=query.error_code)
        sql = f"{SELECT}{where} ORDER BY time DESC, seq DESC LIMIT {int(query.limit)}"
        return [self.record(row) for row in await self.fetch(sql, args)]

    async def subject_records(self, subject: str, since: datetime | None, until: datetime | None) -> list[StoredRecord]:
        where, args = self._where(subject, since, until)
        return [self.record(row) for row in await self.fetch(f"{SELECT}{where} ORDER BY time, seq", args)]

    async def source_stats(self, since: datetime) -> list[SourceStats]:
        source_failures = ", ".join(f"'{code.value}'" for code in sorted(SOURCE_FAILURES))
        caller_errors = ", ".join(f"'{code.value}'" for code in sorted(CALLER_ERRORS))
        sql = (
            "SELECT source, COUNT(*),"
            f" SUM(CASE WHEN outcome <> 'ok' AND error_code IN ({source_failures}) THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN outcome <> 'ok' AND error_code IN ({caller_errors}) THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END),"
            " MAX(CASE WHEN outcome = 'ok' THEN time END) FROM exchange_log WHERE time >= ?"
            " GROUP BY source ORDER BY source"
        )
        rows = await self.fetch(sql, (self.time_param(since),))
        return [SourceStats(source=source, total=total, errors=int(failures or 0), caller_errors=int(callers or 0),
                            other_errors=int(errors or 0) - int(failures or 0) - int(callers or 0),
                            last_ok_at=None if last is None else self.time_value(last))
                for source, total, failures, callers, errors, last in rows]

    def _where(self, subject: str | None, since: datetime | None, until: datetime | None,
               **equal: str | None) -> tuple[str, list[Any]]:
        conditions: list[str] = []
        args: list[Any] = []
        for column, value in (("subject", subject), *equal.items()):
            if value is not None:
                conditions.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            conditions.append("time >= ?")
            args.append(self.time_param(since))
        if until is not None:
            conditions.append("time < ?")
            args.append(self.time_param(until))
        return (" WHERE " + " AND ".join(conditions) if conditions else ""), args

    # -- outages -------------------------------------------------------------------------------

    async def start_outage(self, source: str, at: datetime, reason: str) -> None:
        """Start an outage unless one is ongoing (a partial unique index makes this race-free)."""
        sql = "INSERT INTO outages (source, started_at, reason) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
        await self.execute(sql, (source, self.time_param(at), reason))

    async def end_outage(self, source: str, at: datetime) -> None:
        sql = "UPDATE outages SET ended_at = ? WHERE source = ? AND ended_at IS NULL"
        await self.execute(sql, (self.time_param(at), source))

    async def outages(self, source: str | None, since: datetime | None) -> list[Outage]:
        """Newest first; `since` keeps outages still going on at or after that time."""
        conditions, args = [], []
        if source is not None:
            conditions.append("source = ?")
            args.append(source)
        if since is not None:
            conditions.append("(ended_at IS NULL OR ended_at >= ?)")
            args.append(self.time_param(since))
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        rows = await self.fetch(f"SELECT source, started_at, ended_at, reason FROM outages{where}"
                                " ORDER BY started_at DESC, id DESC", args)
        return [Outage(source=s, started_at=self.time_value(start),
                       ended_at=None if end is None else self.time_value(end), reason=reason)
                for s, start, end, reason in rows]


def backend_for(url: str) -> Backend:
    """The backend for `url`'s scheme: sqlite:///path or postgresql://..."""
    scheme = urlsplit(url).scheme.lower()
    try:
        module_name, _, class_name = BACKENDS[scheme].partition(":")
    except KeyError:
        raise ValueError(f"unsupported database URL scheme {scheme!r}; use sqlite:/// or postgresql://") from None
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls(url)  # type: ignore[call-arg]
