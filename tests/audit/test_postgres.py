"""The log contract on PostgreSQL: a database of this module's own, emptied before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from .conftest import reset_postgres
from .contract import LogContract
from .support import Raw


class PostgresRaw:
    def __init__(self, url: str) -> None:
        self.url = url

    async def execute(self, sql: str) -> None:
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def scalar(self, sql: str) -> Any:
        connection = await asyncpg.connect(self.url)
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()


@pytest.mark.postgres
class TestPostgresLog(LogContract):
    @pytest.fixture
    async def database_url(self, postgres_database: str) -> AsyncIterator[str]:
        await reset_postgres(postgres_database)
        yield postgres_database

    @pytest.fixture
    def raw(self, database_url: str) -> Raw:
        return PostgresRaw(database_url)
