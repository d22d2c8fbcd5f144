"""PostgreSQL for the exchange log tests: one fresh database per test module, dropped after."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from ehis.testing import missing_service, where

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TABLES = "exchange_log, exchange_anchor, outages, exchange_checkpoint, exchange_evidence"


async def _admin(url: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncio.wait_for(asyncpg.connect(url), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _postgres_answers(url: str) -> str | None:
    """None when `SELECT 1` on `url` works, else why not."""
    try:
        await _admin(url, "SELECT 1")
    except Exception as exc:  # noqa: BLE001 - refused, timed out, no such role: all mean "no PostgreSQL"
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL with the right to create databases (EHIS_TEST_POSTGRES_URL or the local default).

    A laptop without PostgreSQL skips these tests; with CI set they fail instead.
    """
    url = os.environ.get("EHIS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    problem = asyncio.run(_postgres_answers(url))
    if problem is not None:
        missing_service(f"PostgreSQL at {where(url, 5432)} does not answer ({problem})")
    return url


@pytest.fixture(scope="module")
def postgres_database(postgres_url: str) -> Iterator[str]:
    """The URL of a database made for this test module (`ehis_test_<random>`), dropped afterwards."""
    name = f"ehis_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
    finally:
        asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def reset_postgres(url: str) -> None:
    """An empty log for the next test: the schema is made again on open."""
    await _admin(url, f"DROP TABLE IF EXISTS {TABLES}")
