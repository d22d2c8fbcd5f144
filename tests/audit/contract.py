"""The one contract both log backends meet: a test module subclasses `LogContract` and provides
`database_url` (an empty database per test) and `raw` (plain SQL beside the log, to tamper with it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ehis.adapters.events import BreakerEvent, BreakerState
from ehis.audit import ExchangeLog, LogQuery, open_log, open_outages
from ehis.audit.chain import GENESIS, canonical, link

from .contract_archive import ArchiveContract
from .contract_evidence import EvidenceContract
from .support import FIN, NOW, OFFICIAL, PURPOSE, Raw, record


class LogContract(ArchiveContract, EvidenceContract):
    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError("a LogContract subclass provides database_url")

    @pytest.fixture
    def raw(self) -> Raw:
        raise NotImplementedError("a LogContract subclass provides raw")

    @pytest.fixture
    def archive_dir(self, tmp_path: Path) -> Path:
        return tmp_path / "archive"

    @pytest.fixture
    async def log(self, database_url: str) -> AsyncIterator[ExchangeLog]:
        async with open_log(database_url) as log:
            yield log

    # -- append and search ---------------------------------------------------------------------

    async def test_append_chains_and_commits(self, log: ExchangeLog, raw: Raw) -> None:
        stored = [await log.append(record(n)) for n in range(3)]
        assert [s.seq for s in stored] == [1, 2, 3]
        assert stored[0].prev_hash == GENESIS
        for previous, current in zip([None, *stored], stored, strict=False):
            assert current.prev_hash == (previous.hash if previous else GENESIS)
            assert current.hash == link(current.prev_hash, canonical(current))
        assert await raw.scalar("SELECT COUNT(*) FROM exchange_log") == 3  # committed: another connection sees it

    async def test_times_are_stored_in_utc(self, log: ExchangeLog) -> None:
        baku = timezone(timedelta(hours=4))
        stored = await log.append(record(time=datetime(2025, 3, 1, 16, 0, 0, 5, tzinfo=baku)))
        [found] = await log.search(LogQuery())
        assert found.time == stored.time == datetime(2025, 3, 1, 12, 0, 0, 5, tzinfo=UTC)
        assert found.time.utcoffset() == timedelta(0)
        assert found == stored

    async def test_search_filters_newest_first(self, log: ExchangeLog) -> None:
        await log.append(record(1, subject="A", subsystem="s1", service="din.person"))
        await log.append(record(2, subject="B", subsystem="s2", service="din.vehicles", outcome="error",
                                error_code="timeout", cache=None))
        await log.append(record(3, subject="A", subsystem="s2", service="din.vehicles"))
        await log.append(record(4, subject=None, subsystem="s1", service="din.person", outcome="error"))

        def ids(records: list) -> list[str]:
            return [r.request_id for r in records]

        assert ids(await log.search(LogQuery())) == ["req-4", "req-3", "req-2", "req-1"]
        assert ids(await log.search(LogQuery(subject="A"))) == ["req-3", "req-1"]
        assert ids(await log.search(LogQuery(subsystem="s2"))) == ["req-3", "req-2"]
        assert ids(await log.search(LogQuery(service="din.person", outcome="error"))) == ["req-4"]
        window = LogQuery(since=NOW + timedelta(seconds=2), until=NOW + timedelta(seconds=4))
        assert ids(await log.search(window)) == ["req-3", "req-2"]  # until is exclusive
        assert ids(await log.search(LogQuery(limit=2))) == ["req-4", "req-3"]
        [failed] = await log.search(LogQuery(subject="B"))
        assert (failed.error_code, failed.cache, failed.subject) == ("timeout", None, "B")

    async def test_concurrent_appends_are_group_committed(self, log: ExchangeLog) -> None:
        stored = await asyncio.gather(*(log.append(record(n)) for n in range(200)))
        assert sorted(s.seq for s in stored) == list(range(1, 201))
        assert len({s.request_id for s in stored}) == 200
        assert log.batches < 200 / 4, f"{log.batches} transactions for 200 records: no group commit"
        report = await log.verify()
        assert report.ok and report.checked == 200 and report.last_seq == 200
        assert len(await log.search(LogQuery(limit=1000))) == 200

    async def test_two_workers_keep_one_chain(self, database_url: str) -> None:
        async with open_log(database_url) as first, open_log(database_url) as second:
            await asyncio.gather(*(w.append(record(n)) for n in range(100) for w in (first, second)))
            report = await first.verify()
        assert report.ok, report
        assert report.checked == 200

    async def test_append_after_close_is_refused(self, database_url: str) -> None:
        log = open_log(database_url)
        await log.open()
        await log.close()
        with pytest.raises(RuntimeError):
            await log.append(record())

    # -- tampering -----------------------------------------------------------------------------

    async def test_verify_detects_a_changed_field(self, log: ExchangeLog, raw: Raw) -> None:
        for n in range(5):
            await log.append(record(n))
        assert (await log.verify()).ok
        await raw.execute("UPDATE exchange_log SET purpose = 'nothing to see' WHERE seq = 3")
        report = await log.verify()
        assert (report.ok, report.problem, report.first_bad_seq, report.checked) == (False, "changed", 3, 2)

    async def test_verify_detects_a_deleted_record(self, log: ExchangeLog, raw: Raw) -> None:
        for n in range(5):
            await log.append(record(n))
        await raw.execute("DELETE FROM exchange_log WHERE seq = 3")
        report = await log.verify()
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "removed", 3)

    async def test_verify_detects_swapped_records(self, log: ExchangeLog, raw: Raw) -> None:
        for n in range(5):
            await log.append(record(n))
        for sql in ("UPDATE exchange_log SET seq = -3 WHERE seq = 3", "UPDATE exchange_log SET seq = 3 WHERE seq = 4",
                    "UPDATE exchange_log SET seq = 4 WHERE seq = -3"):
            await raw.execute(sql)
        report = await log.verify()
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "reordered", 3)

    async def test_verify_detects_a_rewritten_record_with_a_fresh_hash(self, log: ExchangeLog, raw: Raw) -> None:
        stored = [await log.append(record(n)) for n in range(5)]
        forged = stored[2].model_copy(update={"purpose": "forged"})
        new_hash = link(forged.prev_hash, canonical(forged))
        await raw.execute(f"UPDATE exchange_log SET purpose = 'forged', hash = '{new_hash}' WHERE seq = 3")
        report = await log.verify()
        assert (report.ok, report.first_bad_seq) == (False, 4)  # record 4 no longer links to record 3

    # -- reports -------------------------------------------------------------------------------

    async def test_subject_report_says_who_looked_when_and_why(self, log: ExchangeLog) -> None:
        await log.append(record(3, subsystem="vergi-yoxlama", user="inspector-2", purpose="tax audit"))
        await log.append(record(1, service="din.vehicles", outcome="error", error_code="timeout"))
        await log.append(record(2, subject="OTHER01"))
        report = await log.subject_report(FIN)
        assert report.subject == FIN
        assert [(a.subsystem, a.user, a.purpose, a.service, a.outcome, a.error_code) for a in report.accesses] == [
            ("emek-muqavilesi", OFFICIAL, PURPOSE, "din.vehicles", "error", "timeout"),  # oldest first
            ("vergi-yoxlama", "inspector-2", "tax audit", "din.person", "ok", None),
        ]
        assert report.accesses[0].time == NOW + timedelta(seconds=1)
        windowed = await log.subject_report(FIN, since=NOW + timedelta(seconds=2))
        assert [a.subsystem for a in windowed.accesses] == ["vergi-yoxlama"]
        assert (await log.subject_report("NOBODY1")).accesses == []

    async def test_source_stats(self, log: ExchangeLog) -> None:
        await log.append(record(0, time=NOW - timedelta(hours=3)))  # outside the window
        codes = [None, "timeout", None, "forbidden", "unavailable", "not_found", "invalid_input", "deadline_exceeded"]
        for n, code in enumerate(codes, 1):
            await log.append(record(n, outcome="ok" if code is None else "error", error_code=code))
        await log.append(record(9, source="vergiler", service="vergiler.taxpayer", outcome="error",
                                error_code="signature_invalid"))
        stats = {s.source: s for s in await log.source_stats(NOW - timedelta(hours=1))}
        din = stats["din"]  # only the source's failures count against it; the callers' mistakes apart
        assert (din.total, din.errors, din.caller_errors, din.other_errors) == (8, 2, 3, 1)
        assert din.last_ok_at == NOW + timedelta(seconds=3)
        assert (stats["vergiler"].total, stats["vergiler"].errors, stats["vergiler"].last_ok_at) == (1, 1, None)

    # -- outages -------------------------------------------------------------------------------

    async def test_outages_open_close_and_list(self, log: ExchangeLog, database_url: str) -> None:
        def at(minutes: int) -> datetime:
            return NOW + timedelta(minutes=minutes)

        changed = log.outages.breaker_changed
        assert changed(BreakerEvent("din", BreakerState.OPEN, at(0), "timeout: no answer in 5s")) is None
        changed(BreakerEvent("din", BreakerState.HALF_OPEN, at(1)))
        changed(BreakerEvent("din", BreakerState.OPEN, at(2), "another worker's breaker"))  # already ongoing
        changed(BreakerEvent("vergiler", BreakerState.OPEN, at(3), "unavailable"))
        changed(BreakerEvent("din", BreakerState.CLOSED, at(4)))
        changed(BreakerEvent("din", BreakerState.OPEN, at(10), "bad_response"))
        await log.outages.flush()

        outages = await log.outages.list()
        assert [(o.source, o.started_at, o.ended_at, o.reason) for o in outages] == [
            ("din", at(10), None, "bad_response"),
            ("vergiler", at(3), None, "unavailable"),
            ("din", at(0), at(4), "timeout: no answer in 5s"),
        ]
        async with open_outages(database_url) as store:  # another process's view of the same table
            assert [o.started_at for o in await store.list("din")] == [at(10), at(0)]
            assert [o.source for o in await store.list(since=at(5))] == ["din", "vergiler"]

    # -- the application log -------------------------------------------------------------------

    async def test_no_personal_data_in_the_application_log(
            self, log: ExchangeLog, raw: Raw, archive_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        await asyncio.gather(*(log.append(record(n, time=NOW - timedelta(days=3))) for n in range(5)))
        await log.search(LogQuery(subject=FIN))
        await log.subject_report(FIN)
        await log.archive(NOW, archive_dir)
        await log.verify_archives(archive_dir)
        await raw.execute("DROP TABLE exchange_log")
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises reaches the caller
            await log.append(record(6))
        assert "exchange log batch" in caplog.text  # the failure was logged…
        for secret in (FIN, OFFICIAL, PURPOSE):
            assert secret not in caplog.text  # …without the personal data

    async def test_ping_tells_whether_the_log_can_write(self, database_url: str) -> None:
        log = open_log(database_url)
        with pytest.raises(RuntimeError):
            await log.ping()
        async with log:
            await log.ping()
