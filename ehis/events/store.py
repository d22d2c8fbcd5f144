"""Where events wait between their source and the bus: the outbox, the pollers' cursors, and the
leases that keep one poller per source (and one publisher) across every worker.

In the exchange log's database (SQLite by default, PostgreSQL across hosts), so a worker that
dies loses nothing: an event is stored, and a polled source's cursor moved, in one transaction
(`add`), before anyone is told it arrived; it is marked published only once the broker
confirmed it (`published`). A lease is a row naming its holder until a time; whoever holds it
renews it, anyone may take it once it lapsed, and `add` refuses to move a cursor for a poller
whose lease was taken over (a fence: a paused worker that wakes up cannot move it back).
"""

from __future__ import annotations

import asyncio
import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from ehis.events.models import Event

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS event_outbox (
        seq {serial},
        id TEXT NOT NULL UNIQUE,
        key TEXT NOT NULL,
        source TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        body TEXT NOT NULL,
        recorded_at DOUBLE PRECISION,
        published_at DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS event_outbox_pending ON event_outbox (seq) WHERE published_at IS NULL",
    "CREATE INDEX IF NOT EXISTS event_outbox_published ON event_outbox (published_at)",
    """CREATE TABLE IF NOT EXISTS event_cursor (
        source TEXT PRIMARY KEY,
        position TEXT,
        polled_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS event_lease (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until DOUBLE PRECISION NOT NULL
    )""",
)
TAKE_LEASE = (
    "INSERT INTO event_lease (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
    " SET holder = excluded.holder, until = excluded.until"
    " WHERE event_lease.holder = excluded.holder OR event_lease.until < ?"
)
INSERT_EVENT = ("INSERT INTO event_outbox (id, key, source, received_at, body) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING")
MOVE_CURSOR = ("INSERT INTO event_cursor (source, position, polled_at) VALUES (?, ?, ?) ON CONFLICT (source)"
               " DO UPDATE SET position = excluded.position, polled_at = excluded.polled_at")


class LeaseLost(RuntimeError):
    """Another worker holds this poller's lease now: this one must stop polling."""


@dataclass(frozen=True)
class Pending:
    """An event in the outbox not yet confirmed by the broker, in arrival order."""

    seq: int
    event: Event
    recorded: bool  # its deliveries are in the exchange log already (a publish that failed before)


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    oldest_pending_at: float | None  # epoch seconds of the oldest unpublished event's arrival
    received: dict[str, int]  # source -> events held (published and not)
    last_received_at: dict[str, float]  # source -> epoch seconds
    cursors: dict[str, tuple[str | None, float]]  # polled source -> (position, when it was last polled)
    leases: dict[str, tuple[str, float]]  # lease name -> (holder, until)


class Tx(Protocol):
    """One transaction: SQL with `?` placeholders, whichever the database."""

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int: ...  # rows changed
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]: ...


class EventStore(ABC):
    """The outbox, cursors and leases; `open_event_store(url)` picks the database by URL."""

    # -- what a database implements ------------------------------------------------------------

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> Any:
        """An async context manager yielding a `Tx`, serialised with every other writer."""

    # -- written once for both ---------------------------------------------------------------

    async def add(self, events: Sequence[Event], *, cursor: tuple[str, str | None] | None = None,
                  lease: tuple[str, str] | None = None) -> list[Event]:
        """Store `events` (those already held are left as they are) and, for a poll, move the
        source's cursor, in one transaction; returns the events that were new, in order.

        `lease` (name, holder): the poller's lease, checked in the same transaction (LeaseLost).
        """
        now = time.time()
        async with self.transaction() as tx:
            if lease is not None:
                rows = await tx.fetch("SELECT holder, until FROM event_lease WHERE name = ?", (lease[0],))
                if not rows or rows[0][0] != lease[1] or rows[0][1] < now:
                    raise LeaseLost(f"the lease {lease[0]} is no longer this worker's")
            new = []
            for event in events:
                if await tx.execute(INSERT_EVENT, (event.id, event.key, event.system, now,
                                                   event.model_dump_json())):
                    new.append(event)
            if cursor is not None:
                await tx.execute(MOVE_CURSOR, (cursor[0], cursor[1], now))
        return new

    async def held(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` the outbox holds already (an event sent again)."""
        if not ids:
            return set()
        async with self.transaction() as tx:
            rows = await tx.fetch(f"SELECT id FROM event_outbox WHERE id IN ({', '.join('?' for _ in ids)})",
                                  tuple(ids))
        return {r[0] for r in rows}

    async def pending(self, limit: int = 100) -> list[Pending]:
        async with self.transaction() as tx:
            rows = await tx.fetch("SELECT seq, body, recorded_at FROM event_outbox WHERE published_at IS NULL"
                                  " ORDER BY seq LIMIT ?", (limit,))
        return [Pending(int(seq), Event.model_validate_json(body), recorded is not None) for seq, body, recorded in rows]

    async def recorded(self, seqs: Sequence[int]) -> None:
        """Their deliveries are in the exchange log: a retried publish does not record them again."""
        await self._stamp("recorded_at", seqs)

    async def published(self, seqs: Sequence[int]) -> None:
        await self._stamp("published_at", seqs)

    async def _stamp(self, column: str, seqs: Sequence[int]) -> None:
        now = time.time()
        async with self.transaction() as tx:
            for seq in seqs:
                await tx.execute(f"UPDATE event_outbox SET {column} = ? WHERE seq = ?", (now, seq))

    async def position(self, source: str) -> str | None:
        """The stored cursor of a polled source: None before its first poll (from the start)."""
        async with self.transaction() as tx:
            rows = await tx.fetch("SELECT position FROM event_cursor WHERE source = ?", (source,))
        return rows[0][0] if rows else None

    async def lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew `name` for `holder` for `ttl` seconds; False while someone else holds it."""
        now = time.time()
        async with self.transaction() as tx:
            await tx.execute(TAKE_LEASE, (name, holder, now + ttl, now))
            rows = await tx.fetch("SELECT holder FROM event_lease WHERE name = ?", (name,))
        return bool(rows) and rows[0][0] == holder

    async def release(self, name: str, holder: str) -> None:
        async with self.transaction() as tx:
            await tx.execute("DELETE FROM event_lease WHERE name = ? AND holder = ?", (name, holder))

    async def purge(self, published_before: float) -> int:
        """Forget published events older than `published_before` (they carry personal data)."""
        async with self.transaction() as tx:
            return await tx.execute("DELETE FROM event_outbox WHERE published_at IS NOT NULL AND published_at < ?",
                                    (published_before,))

    async def stats(self) -> OutboxStats:
        async with self.transaction() as tx:
            (pending, oldest), = await tx.fetch(
                "SELECT COUNT(*), MIN(received_at) FROM event_outbox WHERE published_at IS NULL")
            received = await tx.fetch("SELECT source, COUNT(*), MAX(received_at) FROM event_outbox GROUP BY source")
            cursors = await tx.fetch("SELECT source, position, polled_at FROM event_cursor")
            leases = await tx.fetch("SELECT name, holder, until FROM event_lease")
        return OutboxStats(
            pending=int(pending), oldest_pending_at=oldest,
            received={s: int(n) for s, n, _ in received}, last_received_at={s: float(t) for s, _, t in received},
            cursors={s: (p, float(t)) for s, p, t in cursors}, leases={n: (h, float(u)) for n, h, u in leases})


#: URL scheme -> "module:class" (as the exchange log's: SQLite never imports asyncpg).
STORES: dict[str, str] = {
    "sqlite": "ehis.events.store:SqliteEventStore",
    "postgresql": "ehis.events.store:PostgresEventStore",
    "postgres": "ehis.events.store:PostgresEventStore",
}


@asynccontextmanager
async def open_event_store(url: str) -> AsyncIterator[EventStore]:
    """The store in the database at `url` (the exchange log's), its tables made if missing."""
    scheme = urlsplit(url).scheme.split("+", 1)[0].lower()
    if scheme not in STORES:
        raise ValueError(f"no event store for {scheme!r} URLs; use one of {', '.join(sorted(STORES))}")
    module, _, name = STORES[scheme].partition(":")
    store: EventStore = getattr(importlib.import_module(module), name)(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


class SqliteEventStore(EventStore):
    """One connection, every statement in a `BEGIN IMMEDIATE` transaction: processes sharing the
    file take turns, as the exchange log's writers do."""

    def __init__(self, url: str) -> None:
        from ehis.audit.sqlite import sqlite_path

        self.path = sqlite_path(url)
        self._db: Any = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        from ehis.audit.sqlite import connect_sqlite

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await connect_sqlite(self.path)
        async with self.transaction() as tx:
            for statement in SCHEMA:
                await tx.execute(statement.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT"))

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        assert self._db is not None, "the event store is not open"
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._db)
                await self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise


class _SqliteTx:
    def __init__(self, db: Any) -> None:
        self.db = db

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        async with self.db.execute(sql, tuple(args)) as cursor:
            return int(cursor.rowcount)

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        async with self.db.execute(sql, tuple(args)) as cursor:
            return list(await cursor.fetchall())


class PostgresEventStore(EventStore):
    """A small pool; each transaction takes an advisory lock so writers take turns across hosts."""

    LOCK = 0x45484953_0002  # "EHIS" + 2: the event tables' lock (the log's chain has its own)

    def __init__(self, url: str) -> None:
        self._url = url
        self._pool: Any = None

    async def open(self) -> None:
        import asyncpg

        from ehis.audit.postgres import ensure_schema

        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=2)
        await ensure_schema(self._pool, [s.format(serial="BIGSERIAL PRIMARY KEY") for s in SCHEMA], self.LOCK)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        assert self._pool is not None, "the event store is not open"
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self.LOCK)
            yield _PostgresTx(conn)


class _PostgresTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        from ehis.audit.postgres import numbered

        status = await self.conn.execute(numbered(sql), *args)
        return int(status.rsplit(" ", 1)[-1]) if status and status[-1].isdigit() else 0

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        from ehis.audit.postgres import numbered

        return [tuple(r) for r in await self.conn.fetch(numbered(sql), *args)]
