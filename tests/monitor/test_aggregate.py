"""The parent of `ehis serve --processes N` adds up its worker processes' metrics and health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ehis.adapters.events import BreakerState, SourceStatus
from ehis.monitor import HubMetrics, create_admin_app
from ehis.monitor.aggregate import (
    create_aggregate_app,
    exposition,
    merge_metrics,
    merge_status,
)
from ehis.monitor.web import status_json

from .conftest import FakeProvider

NOW = datetime(2025, 3, 14, 12, tzinfo=UTC)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text.decode()) for s in f.samples}


def process(requests: int, state: BreakerState, last_success: datetime) -> HubMetrics:
    status = SourceStatus("din", state, 1, 0, last_success, None, None, None)
    m = HubMetrics(sources=lambda: [status])
    for _ in range(requests):
        m.request_done("din.person", "emek-muqavilesi", "ok", "hit", 0.002)
    m.source_call_done("din", "timeout", 5.0)
    return m


def test_counters_and_histograms_add_up_timestamps_take_the_latest() -> None:
    a = process(3, BreakerState.CLOSED, NOW)
    b = process(4, BreakerState.OPEN, NOW + timedelta(minutes=1))
    merged = samples(exposition(merge_metrics([generate_latest(a.registry).decode(),
                                               generate_latest(b.registry).decode()]), 3, 2))
    ok = (("caller", "emek-muqavilesi"), ("outcome", "ok"), ("service", "din.person"))
    assert merged[("ehis_requests_total", ok)] == 7
    assert merged[("ehis_request_duration_seconds_bucket", (("le", "0.003"), ("service", "din.person")))] == 7
    assert merged[("ehis_request_duration_seconds_count", (("service", "din.person"),))] == 7
    assert merged[("ehis_source_calls_total", (("outcome", "timeout"), ("source", "din")))] == 2
    assert merged[("ehis_source_breaker_state", (("source", "din"), ("state", "open")))] == 1  # one process of two
    assert merged[("ehis_source_breaker_state", (("source", "din"), ("state", "closed")))] == 1
    assert merged[("ehis_source_in_flight", (("source", "din"),))] == 2
    latest = (NOW + timedelta(minutes=1)).timestamp()
    assert merged[("ehis_source_last_success_timestamp_seconds", (("source", "din"),))] == latest
    assert merged[("ehis_worker_processes", (("state", "configured"),))] == 3
    assert merged[("ehis_worker_processes", (("state", "answering"),))] == 2


def test_a_source_status_merged_is_the_worst_state_with_calls_summed() -> None:
    closed = status_json(SourceStatus("din", BreakerState.CLOSED, 2, 0, NOW, None, None, None))
    opened = status_json(SourceStatus("din", BreakerState.OPEN, 1, 5, NOW - timedelta(minutes=5),
                                      NOW - timedelta(seconds=10), "timeout", NOW - timedelta(seconds=10)))
    merged = merge_status([closed, opened])
    assert merged["state"] == "open" and merged["in_flight"] == 3 and merged["consecutive_failures"] == 5
    assert merged["last_success_at"] == NOW.isoformat() and merged["last_error"] == "timeout"
    assert merged["processes"] == 2


async def test_the_parent_app_answers_for_all_of_them() -> None:
    a, b = process(1, BreakerState.CLOSED, NOW), process(2, BreakerState.OPEN, NOW)
    workers = [httpx.AsyncClient(transport=httpx.ASGITransport(app=create_admin_app(m, FakeProvider(
        statuses=[SourceStatus("din", s, 0, 0, NOW, None, None, None)]))), base_url="http://worker")
        for m, s in ((a, BreakerState.CLOSED), (b, BreakerState.OPEN))]
    app = create_aggregate_app(workers, [101, 102])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://parent") as parent:
        metrics = (await parent.get("/metrics")).text
        assert 'ehis_requests_total{caller="emek-muqavilesi",outcome="ok",service="din.person"} 3.0' in metrics
        ready = await parent.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert [p["pid"] for p in ready.json()["processes"]] == [101, 102]
        assert ready.json()["sources"][0]["state"] == "open"
        sources = (await parent.get("/api/sources")).json()["sources"]
        din = next(s for s in sources if s["source"] == "din")
        assert din["status"]["state"] == "open" and din["status"]["processes"] == 2
        page = await parent.get("/admin")  # passed to one process as it is
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    for worker in workers:
        await worker.aclose()
