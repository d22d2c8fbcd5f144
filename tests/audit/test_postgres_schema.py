"""Start-up on a shared PostgreSQL log: a worker (re)starting while others append must not lock
their tables, and a log made by an older version gets what it lacks."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ehis.audit.postgres import PostgresBackend
from ehis.events.store import PostgresEventStore

from .conftest import reset_postgres

pytestmark = pytest.mark.postgres
BUSY_TABLES = ("exchange_log", "outages", "exchange_evidence", "event_outbox")


async def _open_and_close(opened: PostgresBackend | PostgresEventStore) -> None:
    await opened.open()
    await opened.close()


async def test_a_worker_starting_beside_busy_writers_takes_no_table_lock(postgres_database: str) -> None:
    await reset_postgres(postgres_database)
    await _open_and_close(PostgresBackend(postgres_database))
    await _open_and_close(PostgresEventStore(postgres_database))
    writer = await asyncpg.connect(postgres_database)  # another worker, mid-append on every table
    try:
        async with writer.transaction():
            for table in BUSY_TABLES:
                await writer.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
            # a no-op CREATE INDEX / ADD COLUMN would wait for this transaction (and could deadlock with it)
            await asyncio.wait_for(_open_and_close(PostgresBackend(postgres_database)), timeout=30)
            await asyncio.wait_for(_open_and_close(PostgresEventStore(postgres_database)), timeout=30)
    finally:
        await writer.close()


async def test_an_older_log_gets_its_missing_columns_and_indexes(postgres_database: str) -> None:
    await reset_postgres(postgres_database)
    await _open_and_close(PostgresBackend(postgres_database))
    admin = await asyncpg.connect(postgres_database)
    try:
        await admin.execute("ALTER TABLE exchange_log DROP COLUMN delivery; DROP INDEX outages_started")
        await _open_and_close(PostgresBackend(postgres_database))
        columns = {r[0] for r in await admin.fetch("SELECT column_name FROM information_schema.columns"
                                                   " WHERE table_name = 'exchange_log'")}
        indexes = {r[0] for r in await admin.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'outages'")}
    finally:
        await admin.close()
    assert "delivery" in columns and "outages_started" in indexes


async def test_workers_starting_together_on_an_empty_database_all_start(postgres_database: str) -> None:
    await reset_postgres(postgres_database)
    admin = await asyncpg.connect(postgres_database)
    try:
        await admin.execute("DROP TABLE IF EXISTS event_outbox, event_cursor, event_lease")
    finally:
        await admin.close()
    await asyncio.gather(*(_open_and_close(PostgresBackend(postgres_database)) for _ in range(4)),
                         *(_open_and_close(PostgresEventStore(postgres_database)) for _ in range(4)))
