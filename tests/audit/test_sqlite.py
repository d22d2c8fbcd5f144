"""The log contract on SQLite, plus what only the file database does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from ehis.audit import open_log

from .contract import LogContract
from .support import Raw, record


class SqliteRaw:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def execute(self, sql: str) -> None:
        async with aiosqlite.connect(self.path) as db:
            await db.execute(sql)
            await db.commit()

    async def scalar(self, sql: str) -> Any:
        async with aiosqlite.connect(self.path) as db, db.execute(sql) as cursor:
            return (await cursor.fetchone())[0]


class TestSqliteLog(LogContract):
    @pytest.fixture
    def database_path(self, tmp_path: Path) -> Path:
        return tmp_path / "not" / "yet" / "there" / "ehis.db"

    @pytest.fixture
    def database_url(self, database_path: Path) -> str:
        return f"sqlite:///{database_path}"

    @pytest.fixture
    def raw(self, database_path: Path) -> Raw:
        return SqliteRaw(database_path)


async def test_wal_mode_and_reopen_keeps_the_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ehis.db'}"
    async with open_log(url) as log:
        first = await log.append(record(1))
    async with open_log(url) as log:  # the schema is already there: opening again is harmless
        second = await log.append(record(2))
        assert (await log.verify()).checked == 2
    assert second.prev_hash == first.hash
    async with aiosqlite.connect(tmp_path / "ehis.db") as db, db.execute("PRAGMA journal_mode") as cursor:
        assert (await cursor.fetchone())[0] == "wal"


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="scheme"):
        open_log("mysql://db/ehis")
    with pytest.raises(ValueError, match="sqlite:///"):
        open_log("sqlite://")
