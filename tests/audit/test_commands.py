"""`ehis log …` and `ehis outages` through a parser built as ehis/cli.py builds it, on both databases."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ehis.adapters.events import BreakerEvent, BreakerState
from ehis.audit import open_log
from ehis.audit.commands import register
from ehis.config import Settings

from .conftest import reset_postgres
from .support import FIN, NOW, OFFICIAL, PURPOSE, record
from .test_postgres import PostgresRaw
from .test_sqlite import SqliteRaw


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, SqliteRaw | PostgresRaw]]:
    if request.param == "sqlite":
        path = tmp_path / "ehis.db"
        yield f"sqlite:///{path}", SqliteRaw(path)
        return
    url = request.getfixturevalue("postgres_database")
    asyncio.run(reset_postgres(url))
    yield url, PostgresRaw(url)


@pytest.fixture
def settings(database: tuple[str, object], tmp_path: Path) -> Settings:
    return Settings(database_url=database[0], data_dir=tmp_path / "data", archive_dir=tmp_path / "archive")


@pytest.fixture
def ehis(settings: Settings, capsys: pytest.CaptureFixture[str]):
    """Run `ehis <argv>`; returns (exit code, stdout)."""
    parser = argparse.ArgumentParser(prog="ehis")
    register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        args = parser.parse_args(argv)
        code = args.run(args, settings)
        return code, capsys.readouterr().out

    return run


def seed(settings: Settings, *records: object, events: tuple[BreakerEvent, ...] = ()) -> None:
    async def write() -> None:
        async with open_log(settings.database) as log:
            for r in records:
                await log.append(r)  # type: ignore[arg-type]
            for event in events:
                log.outages.breaker_changed(event)

    asyncio.run(write())


def test_search(settings: Settings, ehis) -> None:
    seed(settings, record(1), record(2, subject="OTHER01", subsystem="vergi"), record(3, outcome="error",
                                                                                    error_code="timeout"))
    code, out = ehis("log", "search", "--subject", FIN)
    lines = out.splitlines()
    assert code == 0 and lines[-1] == "2 records"
    assert "ok/timeout" not in out and "error/timeout" in lines[0] and f"subject={FIN}" in lines[1]
    assert "OTHER01" not in out

    code, out = ehis("log", "search", "--subsystem", "vergi", "--json")
    assert [(r["seq"], r["subject"]) for r in json.loads(out)] == [(2, "OTHER01")]
    code, out = ehis("log", "search", "--since", (NOW + timedelta(seconds=2)).isoformat(), "--json")
    assert [r["request_id"] for r in json.loads(out)] == ["req-3", "req-2"]


def test_subject_report(settings: Settings, ehis) -> None:
    seed(settings, record(1), record(2, subject="OTHER01", purpose="not for this report"),
         record(3, subsystem="vergi-yoxlama", user="", purpose="", outcome="error", error_code="not_found"))
    code, out = ehis("log", "report", FIN)
    assert code == 0
    assert f"emek-muqavilesi, official {OFFICIAL}, asked din.person from din; purpose: {PURPOSE}; answered" in out
    assert "vergi-yoxlama, official (not given)" in out and "failed (not_found)" in out
    assert out.index("emek-muqavilesi") < out.index("vergi-yoxlama")  # oldest first
    assert "not for this report" not in out and out.rstrip().endswith("2 accesses")

    code, out = ehis("log", "report", FIN, "--json")
    report = json.loads(out)
    assert report["subject"] == FIN and [a["seq"] for a in report["accesses"]] == [1, 3]
    assert "No access" in ehis("log", "report", "N0B0DY1")[1]


def test_verify_exit_code(settings: Settings, database: tuple[str, SqliteRaw | PostgresRaw], ehis) -> None:
    seed(settings, *(record(n) for n in range(4)))
    code, out = ehis("log", "verify")
    assert code == 0 and "ok, 4 records checked" in out
    asyncio.run(database[1].execute("UPDATE exchange_log SET subsystem = 'someone-else' WHERE seq = 2"))
    code, out = ehis("log", "verify")
    assert code == 1 and "BROKEN at seq 2: changed" in out


def test_archive_and_verify_archives(settings: Settings, database: tuple[str, SqliteRaw | PostgresRaw],
                                     ehis) -> None:
    old = NOW - timedelta(days=settings.log_retention_days + 1)
    seed(settings, record(1, time=old), record(2, time=old), record(3))
    code, out = ehis("log", "archive")  # default: older than the retention period, into archive_dir
    assert code == 0 and "archived 2 records (seq 1..2)" in out
    assert len(list(settings.archive_path.glob("exchange-log-*.jsonl.gz"))) == 1
    assert "nothing older than" in ehis("log", "archive")[1]

    code, out = ehis("log", "verify", "--archives")
    assert code == 0 and "ok, 3 records checked" in out
    asyncio.run(database[1].execute("DELETE FROM exchange_anchor"))  # hide that an archive was made
    code, out = ehis("log", "verify", "--archives")
    assert code == 1 and "broken_archive" in out


def test_outages(settings: Settings, ehis) -> None:
    seed(settings, events=(
        BreakerEvent("din", BreakerState.OPEN, NOW, "timeout"),
        BreakerEvent("din", BreakerState.CLOSED, NOW + timedelta(minutes=3)),
        BreakerEvent("vergiler", BreakerState.OPEN, NOW + timedelta(minutes=5), "unavailable"),
    ))
    code, out = ehis("outages")
    lines = out.splitlines()
    assert code == 0 and lines[-1] == "2 outages"
    assert lines[0].startswith("vergiler") and lines[0].endswith("ongoing  unavailable")
    assert lines[1].startswith("din") and "ongoing" not in lines[1] and lines[1].endswith("timeout")

    code, out = ehis("outages", "--source", "din", "--json")
    [din] = json.loads(out)
    assert (din["source"], din["reason"], din["ended_at"] is not None) == ("din", "timeout", True)
    assert ehis("outages", "--source", "asan")[1].strip() == "0 outages"
