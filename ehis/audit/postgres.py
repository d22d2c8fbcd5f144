"""The log in PostgreSQL, shared by every worker process.

Each batch transaction first takes a transaction-scoped advisory lock, then reads the head and
inserts after it: workers in several processes extend one chain, one batch at a time. The lock
is released by COMMIT, so it is held for one round of inserts only.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from ehis.audit.backend import (
    ADDED_COLUMNS,
    HEAD,
    INSERT,
    INSERT_CHECKPOINT,
    LATEST_ANCHOR,
    SELECT,
    Anchor,
    Backend,
    Prepared,
    Snapshot,
)
from ehis.audit.chain import GENESIS, utc
from ehis.audit.model import Checkpoint, StoredRecord

CHAIN_LOCK = 0x65686973_6C6F6701  # "ehislog" + 1: whoever holds it may extend the chain
SCHEMA_LOCK = 0x65686973_6C6F6702  # concurrent CREATE TABLE IF NOT EXISTS can still collide
CHECKPOINT_LOCK = 0x65686973_6C6F6703  # whoever holds it may add a checkpoint (appends go on meanwhile)
CHUNK = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS exchange_log (
    seq bigint PRIMARY KEY,
    request_id text NOT NULL,
    time timestamptz NOT NULL,
    subsystem text NOT NULL,
    official text NOT NULL,
    purpose text NOT NULL,
    service text NOT NULL,
    source text NOT NULL,
    subject text,
    outcome text NOT NULL,
    error_code text,
    cache text,
    duration_ms double precision NOT NULL,
    signer text,
    evidence text,
    parent_id text,
    endpoint text,
    delivery text,
    prev_hash text NOT NULL,
    hash text NOT NULL
);
CREATE INDEX IF NOT EXISTS exchange_log_subject ON exchange_log (subject, time);
CREATE INDEX IF NOT EXISTS exchange_log_time ON exchange_log (time);
CREATE INDEX IF NOT EXISTS exchange_log_request ON exchange_log (request_id);
CREATE TABLE IF NOT EXISTS exchange_anchor (
    seq bigint PRIMARY KEY,
    hash text NOT NULL,
    file text NOT NULL,
    digest text NOT NULL,
    archived_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS outages (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    reason text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS outages_ongoing ON outages (source) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS outages_started ON outages (started_at);
CREATE TABLE IF NOT EXISTS exchange_checkpoint (
    seq bigint PRIMARY KEY,
    first_seq bigint NOT NULL,
    start_hash text NOT NULL,
    hash text NOT NULL,
    root text NOT NULL,
    previous text,
    time timestamptz NOT NULL,
    log text NOT NULL,
    digest text NOT NULL,
    document bytea NOT NULL,
    token bytea,
    stamped_at timestamptz
);
CREATE TABLE IF NOT EXISTS exchange_evidence (
    digest text PRIMARY KEY,
    source text NOT NULL,
    signer text NOT NULL,
    fetched_at timestamptz NOT NULL,
    key_id text NOT NULL,
    sealed bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS exchange_evidence_fetched ON exchange_evidence (fetched_at);
"""


_CREATED = re.compile(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)", re.IGNORECASE)
DEADLOCK_TRIES = 5


async def ensure_schema(pool: asyncpg.Pool, statements: Sequence[str], lock: int,
                        added: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> None:
    """Runs `statements` (CREATE … IF NOT EXISTS) and adds the `added` columns, unless all is there.

    Why look first: even a no-op `CREATE INDEX IF NOT EXISTS` or `ADD COLUMN IF NOT EXISTS` locks
    its table, so a worker restarting while others append could deadlock with them (it did under
    chaos). When the schema is complete, start-up takes no table lock at all; when it is not, the
    DDL runs under `lock` (workers starting together take turns) and a deadlock is tried again.
    """
    added = added or {}
    async with pool.acquire() as conn:
        if await _schema_complete(conn, statements, added):
            return
        for attempt in range(1, DEADLOCK_TRIES + 1):
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
                    for statement in statements:
                        await conn.execute(statement)
                    for table, columns in added.items():
                        present = await _columns(conn, table)
                        for column, kind in columns:
                            if column not in present:
                                await conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == DEADLOCK_TRIES:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)


async def _schema_complete(conn: asyncpg.Connection, statements: Sequence[str],
                           added: Mapping[str, Sequence[tuple[str, str]]]) -> bool:
    """Whether every table, index and added column exists (read from the catalog, no table locks)."""
    names = sorted({name for statement in statements for name in _CREATED.findall(statement)})
    found = await conn.fetchval("SELECT count(*) FROM pg_class WHERE relname = ANY($1::text[])"
                                " AND pg_table_is_visible(oid)", names)
    if found < len(names):
        return False
    for table, columns in added.items():
        present = await _columns(conn, table)
        if any(column not in present for column, _ in columns):
            return False
    return True


async def _columns(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch("SELECT column_name FROM information_schema.columns"
                            " WHERE table_schema = current_schema() AND table_name = $1", table)
    return {row[0] for row in rows}


def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2…` (the shared SQL has no `?` in literals)."""
    parts = sql.split("?")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


INSERT_PG = numbered(INSERT)


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, url: str, *, max_connections: int = 4) -> None:
        self._url = url
        self._max = max_connections
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the log is not open"
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._max)
        await ensure_schema(self.pool, [SCHEMA], SCHEMA_LOCK, {"exchange_log": ADDED_COLUMNS})

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def append_batch(self, batch: Sequence[Prepared]) -> list[StoredRecord]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
            head = await conn.fetchrow(HEAD)  # a new statement: it sees what the last lock holder committed
            rows, stored = self.chain_rows(batch, *(tuple(head) if head else (0, GENESIS)))
            await conn.executemany(INSERT_PG, rows)
        return stored

    async def commit_archive(self, expected: Anchor, new: Anchor, archived_at: datetime,
                             answers: Sequence[str] = ()) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
            latest = await conn.fetchrow(LATEST_ANCHOR)
            if (latest[0] if latest else 0) != expected.seq:
                return False
            await conn.execute("DELETE FROM exchange_log WHERE seq <= $1", new.seq)
            await conn.execute("DELETE FROM exchange_evidence WHERE digest = ANY($1::text[])", list(answers))
            await conn.execute("INSERT INTO exchange_anchor (seq, hash, file, digest, archived_at)"
                               " VALUES ($1, $2, $3, $4, $5)", new.seq, new.hash, new.file, new.digest, archived_at)
        return True

    async def commit_checkpoint(self, expected_seq: int, checkpoint: Checkpoint) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHECKPOINT_LOCK)
            if await conn.fetchval("SELECT COALESCE(MAX(seq), 0) FROM exchange_checkpoint") != expected_seq:
                return False
            await conn.execute(numbered(INSERT_CHECKPOINT), *self.checkpoint_row(checkpoint))
        return True

    async def insert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(numbered(sql), [tuple(row) for row in rows])

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return list(await self.pool.fetch(numbered(sql), *args))

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        await self.pool.execute(numbered(sql), *args)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = _PostgresSnapshot(self, conn)
            row = await conn.fetchrow(LATEST_ANCHOR)
            snapshot.anchor = Anchor(*row) if row else Anchor()
            yield snapshot

    def time_param(self, moment: datetime) -> datetime:
        return utc(moment)

    def time_value(self, stored: Any) -> datetime:
        return utc(stored)


class _PostgresSnapshot(Snapshot):
    def __init__(self, backend: PostgresBackend, conn: asyncpg.Connection) -> None:
        self._backend = backend
        self._conn = conn

    @property
    def backend(self) -> PostgresBackend:
        return self._backend

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return list(await self._conn.fetch(numbered(sql), *args))

    async def records(self, upto: int | None = None, after: int | None = None) -> AsyncIterator[StoredRecord]:
        sql = f"{SELECT} WHERE seq > $1 AND seq <= $2 ORDER BY seq"
        args = (-(2**63) if after is None else after, 2**63 - 1 if upto is None else upto)
        async for row in self._conn.cursor(sql, *args, prefetch=CHUNK):
            yield self._backend.record(row)
