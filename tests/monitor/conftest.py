"""A fake AdminProvider and the data it serves, shared by the web, server and browser tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from ehis.adapters.events import BreakerState, SourceStatus
from ehis.audit.model import LogQuery, Outage, SourceStats, StoredRecord
from ehis.monitor.web import LogAccess

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
SUBJECT = "5GXM4DZ"
OTHER_SUBJECT = "7KQP2LA"
# an official's stated purpose is free text from the caller: the page must show it, never run it
HOSTILE_PURPOSE = '<img src=x onerror="window.__ehisXss=1"><script>window.__ehisXss=1</script>'


def status(source: str, state: BreakerState = BreakerState.CLOSED, *, in_flight: int = 0,
           last_success_at: datetime | None = NOW) -> SourceStatus:
    return SourceStatus(source=source, state=state, in_flight=in_flight,
                        consecutive_failures=0 if state is BreakerState.CLOSED else 5,
                        last_success_at=last_success_at, last_failure_at=None,
                        last_error=None if state is BreakerState.CLOSED else "timeout",
                        opened_at=None if state is BreakerState.CLOSED else NOW - timedelta(minutes=3))


def record(seq: int, subject: str | None, *, purpose: str = "employment contract 2025/118",
           outcome: str = "ok", error_code: str | None = None, subsystem: str = "emek-muqavilesi",
           service: str = "din.person", minutes_ago: int = 0) -> StoredRecord:
    return StoredRecord(
        request_id=f"req-{seq:04d}", time=NOW - timedelta(minutes=minutes_ago), subsystem=subsystem,
        user="AZ0000001", purpose=purpose, service=service, source=service.split(".", 1)[0],
        subject=subject, outcome=outcome, error_code=error_code, cache="miss" if outcome == "ok" else None,
        duration_ms=12.5 * seq, signer="CN=din,O=Daxili İşlər Nazirliyi", evidence="ab" * 32,
        seq=seq, prev_hash=f"{seq - 1:064x}", hash=f"{seq:064x}",
    )


@dataclass
class FakeProvider:
    """An AdminProvider over lists, recording what the app asked for."""

    statuses: list[SourceStatus] = field(default_factory=list)
    check_results: dict[str, bool] = field(default_factory=lambda: {"bus": True, "exchange_log": True})
    records: list[StoredRecord] = field(default_factory=list)
    outage_list: list[Outage] = field(default_factory=list)
    stats: list[SourceStats] = field(default_factory=list)
    check_delay: float = 0.0
    fail: set[str] = field(default_factory=set)  # method names that raise
    queries: list[LogQuery] = field(default_factory=list)
    outage_requests: list[str | None] = field(default_factory=list)
    stats_since: list[datetime] = field(default_factory=list)
    accesses: list[LogAccess] = field(default_factory=list)  # searches the app recorded

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise ConnectionError(f"{name} down, subject {SUBJECT}")  # a message the app must not repeat

    def sources(self) -> list[SourceStatus]:
        self._maybe_fail("sources")
        return list(self.statuses)

    async def checks(self) -> dict[str, bool]:
        self._maybe_fail("checks")
        await asyncio.sleep(self.check_delay)
        return dict(self.check_results)

    async def search(self, query: LogQuery) -> list[StoredRecord]:
        self._maybe_fail("search")
        self.queries.append(query)
        found = [r for r in self.records
                 if (query.subject is None or r.subject == query.subject)
                 and (query.subsystem is None or r.subsystem == query.subsystem)
                 and (query.service is None or r.service == query.service)
                 and (query.outcome is None or r.outcome == query.outcome)
                 and (query.since is None or r.time >= query.since)
                 and (query.until is None or r.time <= query.until)]
        return sorted(found, key=lambda r: r.seq, reverse=True)[: query.limit]

    async def record_access(self, access: LogAccess) -> None:
        self._maybe_fail("record_access")
        self.accesses.append(access)

    async def outages(self, source: str | None = None) -> list[Outage]:
        self._maybe_fail("outages")
        self.outage_requests.append(source)
        return [o for o in self.outage_list if source is None or o.source == source]

    async def source_stats(self, since: datetime) -> list[SourceStats]:
        self._maybe_fail("source_stats")
        self.stats_since.append(since)
        return list(self.stats)


def populated_provider() -> FakeProvider:
    """Three sources (closed, open, half open), five exchanges (one hostile), two outages."""
    return FakeProvider(
        statuses=[status("din", in_flight=2), status("vergiler", BreakerState.OPEN, last_success_at=None),
                  status("dsk", BreakerState.HALF_OPEN)],
        records=[
            record(1, SUBJECT, minutes_ago=50),
            record(2, OTHER_SUBJECT, minutes_ago=40),
            record(3, SUBJECT, purpose=HOSTILE_PURPOSE, minutes_ago=30),
            record(4, None, service="dsk.average-wage", subsystem="statistika", minutes_ago=20),
            record(5, SUBJECT, outcome="error", error_code="timeout", service="vergiler.taxpayer", minutes_ago=10),
        ],
        outage_list=[
            Outage(source="vergiler", started_at=NOW - timedelta(days=2), ended_at=NOW - timedelta(days=2, minutes=-5),
                   reason="timeout: no answer in 5 s"),
            Outage(source="vergiler", started_at=NOW - timedelta(minutes=3), reason="unavailable: connection refused"),
        ],
        stats=[SourceStats(source="din", total=40, errors=2, last_ok_at=NOW),
               SourceStats(source="vergiler", total=10, errors=10),
               SourceStats(source="kb", total=4, errors=0, last_ok_at=NOW - timedelta(minutes=30))],
    )


@pytest.fixture
def provider() -> FakeProvider:
    return populated_provider()
