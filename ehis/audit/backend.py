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
from ehis.audit.model import (
    Checkpoint,
    ExchangeRecord,
    LogQuery,
    Outage,
    SourceStats,
    StoredRecord,
)
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
    "delivery",
    "prev_hash", "hash",
)
#: Columns added after the first release, with their SQL type: `open` adds them to an older database.
ADDED_COLUMNS = (("parent_id", "text"), ("endpoint", "text"), ("delivery", "text"))
SELECT = f"SELECT {', '.join(COLUMNS)} FROM exchange_log"
INSERT = f"INSERT INTO exchange_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
#: The chain's head: the last live record, or the last archive's anchor when none is left.
HEAD = (
    "SELECT seq, hash FROM (SELECT seq, hash FROM exchange_log ORDER BY seq DESC LIMIT 1) AS live"
    " UNION ALL SELECT seq, hash FROM (SELECT seq, hash FROM exchange_anchor ORDER BY seq DESC LIMIT 1) AS anchor"
    " ORDER BY seq DESC LIMIT 1"
)
LATEST_ANCHOR = "SELECT seq, hash, file, digest FROM exchange_anchor ORDER BY seq DESC LIMIT 1"
CHECKPOINT_COLUMNS = ("seq", "first_seq", "start_hash", "hash", "root", "previous", "time", "log", "digest",
                      "document", "token", "stamped_at")
SELECT_CHECKPOINT = f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM exchange_checkpoint"
INSERT_CHECKPOINT = (f"INSERT INTO exchange_checkpoint ({', '.join(CHECKPOINT_COLUMNS)})"
                     f" VALUES ({', '.join('?' for _ in CHECKPOINT_COLUMNS)})")
LATEST_CHECKPOINT = f"{SELECT_CHECKPOINT} ORDER BY seq DESC LIMIT 1"
#: The checkpoints after the newest time-stamped one: none of them is covered by a token yet.
UNSTAMPED = ("FROM exchange_checkpoint WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM exchange_checkpoint"
             " WHERE token IS NOT NULL)")
EVIDENCE_COLUMNS = ("digest", "source", "signer", "fetched_at", "key_id", "sealed")
INSERT_EVIDENCE = (f"INSERT INTO exchange_evidence ({', '.join(EVIDENCE_COLUMNS)})"
                   f" VALUES ({', '.join('?' for _ in EVIDENCE_COLUMNS)}) ON CONFLICT (digest) DO NOTHING")
SELECT_EVIDENCE = f"SELECT {', '.join(EVIDENCE_COLUMNS)} FROM exchange_evidence"

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
    def records(self, upto: int | None = None, after: int | None = None) -> AsyncIterator[StoredRecord]:
        """Every live record in seq order (after `after`, up to `upto`), read in chunks."""

    @abstractmethod
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    async def seq_of_hash(self, digest: str) -> int | None:
        rows = await self.fetch("SELECT seq FROM exchange_log WHERE hash = ? ORDER BY seq LIMIT 1", (digest,))
        return rows[0][0] if rows else None

    async def anchors(self) -> list[Anchor]:
        rows = await self.fetch("SELECT seq, hash, file, digest FROM exchange_anchor ORDER BY seq")
        return [Anchor(*row) for row in rows]

    async def checkpoints(self, after: int = 0, limit: int = 500) -> list[Checkpoint]:
        """Checkpoints with seq > `after`, oldest first, as this snapshot sees them."""
        rows = await self.fetch(f"{SELECT_CHECKPOINT} WHERE seq > ? ORDER BY seq LIMIT {int(limit)}", (after,))
        return [self.backend.checkpoint(row) for row in rows]

    @property
    @abstractmethod
    def backend(self) -> Backend: ...


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
    async def commit_archive(self, expected: Anchor, new: Anchor, archived_at: datetime,
                             answers: Sequence[str] = ()) -> bool:
        """Delete records up to `new.seq` (and the kept `answers` retention removes) and record
        `new`, unless another archive ran since `expected`."""

    @abstractmethod
    async def commit_checkpoint(self, expected_seq: int, checkpoint: Checkpoint) -> bool:
        """Store `checkpoint` unless the newest stored one is no longer at `expected_seq` (another worker's)."""

    @abstractmethod
    async def insert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for each row, in one committed transaction."""

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
                         r.evidence, r.parent_id, r.endpoint, r.delivery, prev, digest))
            stored.append(StoredRecord.model_construct(**dict(record), seq=seq, prev_hash=prev, hash=digest))
            prev = digest
        return rows, stored

    def record(self, row: Sequence[Any]) -> StoredRecord:
        """A row in COLUMNS order as a record, unvalidated: a tampered value must reach the hash check."""
        (seq, request_id, time, subsystem, official, purpose, service, source, subject, outcome, error_code,
         cache, duration_ms, signer, evidence, parent_id, endpoint, delivery, prev_hash, digest) = row
        return StoredRecord.model_construct(
            seq=seq, request_id=request_id, time=self.time_value(time), subsystem=subsystem, user=official,
            purpose=purpose, service=service, source=source, subject=subject, outcome=outcome,
            error_code=error_code, cache=cache, duration_ms=duration_ms, signer=signer, evidence=evidence,
            parent_id=parent_id, endpoint=endpoint, delivery=delivery, prev_hash=prev_hash,
            hash=digest,
        )

    def checkpoint(self, row: Sequence[Any]) -> Checkpoint:
        """A row in CHECKPOINT_COLUMNS order, unvalidated: its signature is what vouches for it."""
        values = dict(zip(CHECKPOINT_COLUMNS, row, strict=True))
        values["time"] = self.time_value(values["time"])
        values["stamped_at"] = None if values["stamped_at"] is None else self.time_value(values["stamped_at"])
        for name in ("document", "token"):
            values[name] = None if values[name] is None else bytes(values[name])
        return Checkpoint.model_construct(**values)

    def checkpoint_row(self, c: Checkpoint) -> tuple:
        return (c.seq, c.first_seq, c.start_hash, c.hash, c.root, c.previous, self.time_param(c.time), c.log,
                c.digest, c.document, c.token, None if c.stamped_at is None else self.time_param(c.stamped_at))

    # -- checkpoints ---------------------------------------------------------------------------

    async def last_checkpoint(self) -> Checkpoint | None:
        rows = await self.fetch(LATEST_CHECKPOINT)
        return self.checkpoint(rows[0]) if rows else None

    async def covering_checkpoint(self, seq: int) -> Checkpoint | None:
        """The checkpoint whose records include `seq` (the first at or after it)."""
        rows = await self.fetch(f"{SELECT_CHECKPOINT} WHERE seq >= ? ORDER BY seq LIMIT 1", (seq,))
        return self.checkpoint(rows[0]) if rows else None

    async def checkpoint_range(self, first: int, last: int) -> list[Checkpoint]:
        rows = await self.fetch(f"{SELECT_CHECKPOINT} WHERE seq >= ? AND seq <= ? ORDER BY seq", (first, last))
        return [self.checkpoint(row) for row in rows]

    async def stamped_after(self, seq: int) -> Checkpoint | None:
        """The first time-stamped checkpoint at or after `seq`: its token covers `seq`'s checkpoint."""
        rows = await self.fetch(f"{SELECT_CHECKPOINT} WHERE seq >= ? AND token IS NOT NULL ORDER BY seq LIMIT 1",
                                (seq,))
        return self.checkpoint(rows[0]) if rows else None

    async def unstamped(self) -> tuple[Checkpoint | None, datetime | None]:
        """The newest checkpoint no token covers yet, and the time of the oldest such one."""
        rows = await self.fetch(f"{SELECT_CHECKPOINT} WHERE seq = (SELECT MAX(seq) {UNSTAMPED})")
        oldest = await self.fetch(f"SELECT MIN(time) {UNSTAMPED}")
        since = None if not oldest or oldest[0][0] is None else self.time_value(oldest[0][0])
        return (self.checkpoint(rows[0]) if rows else None), since

    async def set_token(self, seq: int, token: bytes, stamped_at: datetime) -> None:
        await self.execute("UPDATE exchange_checkpoint SET token = ?, stamped_at = ? WHERE seq = ? AND token IS NULL",
                           (token, self.time_param(stamped_at), seq))

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
