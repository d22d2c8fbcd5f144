"""HubMetrics: what a scrape shows after the hub reports requests, source calls and breaker states."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ehis.adapters.events import BreakerState, SourceStatus
from ehis.monitor import HubMetrics

from .conftest import SUBJECT, status


def value(metrics: HubMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_request_done_counts_outcome_duration_and_cache() -> None:
    m = HubMetrics()
    m.request_done("din.person", "emek-muqavilesi", "ok", "miss", 0.2)
    m.request_done("din.person", "emek-muqavilesi", "ok", "hit", 0.002)
    m.request_done("din.person", "emek-muqavilesi", "timeout", "miss", 5.0)
    m.request_done("din.person", "sosial", "forbidden", None, 0.001)

    assert value(m, "ehis_requests_total", service="din.person", caller="emek-muqavilesi", outcome="ok") == 2
    assert value(m, "ehis_requests_total", service="din.person", caller="emek-muqavilesi", outcome="timeout") == 1
    assert value(m, "ehis_requests_total", service="din.person", caller="sosial", outcome="forbidden") == 1
    assert value(m, "ehis_request_duration_seconds_count", service="din.person") == 4
    assert value(m, "ehis_request_duration_seconds_sum", service="din.person") == pytest.approx(5.203)
    # the cache hit lands in the lowest buckets, the 5 s timeout does not
    assert value(m, "ehis_request_duration_seconds_bucket", service="din.person", le="0.003") == 2
    assert value(m, "ehis_request_duration_seconds_bucket", service="din.person", le="30.0") == 4
    assert value(m, "ehis_cache_requests_total", service="din.person", status="miss") == 2
    assert value(m, "ehis_cache_requests_total", service="din.person", status="hit") == 1
    # refused early: no source asked, so no cache status counted
    assert value(m, "ehis_cache_requests_total", service="din.person", status="coalesced") is None


def test_labels_stay_bounded_whatever_callers_send() -> None:
    m = HubMetrics()
    m.request_done(f"din.{SUBJECT}", "emek-muqavilesi", "unknown_service", None, 0.001)
    m.request_done("din.person", "emek-muqavilesi", "weird", "bogus", 0.001)
    m.source_call_done("nosuch", "ok", 0.1)

    assert value(m, "ehis_requests_total", service="unknown", caller="emek-muqavilesi",
                 outcome="unknown_service") == 1
    assert value(m, "ehis_requests_total", service="din.person", caller="emek-muqavilesi", outcome="other") == 1
    assert value(m, "ehis_source_calls_total", source="unknown", outcome="ok") == 1
    text = generate_latest(m.registry).decode()
    assert SUBJECT not in text and "bogus" not in text


def test_source_call_done_counts_each_call() -> None:
    m = HubMetrics()
    m.source_call_done("din", "ok", 0.05)
    m.source_call_done("din", "timeout", 5.0)
    m.source_call_done("din", "timeout", 5.0)

    assert value(m, "ehis_source_calls_total", source="din", outcome="ok") == 1
    assert value(m, "ehis_source_calls_total", source="din", outcome="timeout") == 2
    assert value(m, "ehis_source_call_duration_seconds_count", source="din") == 3
    assert value(m, "ehis_source_call_duration_seconds_bucket", source="din", le="0.05") == 1


def test_track_in_flight_counts_while_inside_even_on_error() -> None:
    m = HubMetrics()
    with m.track_in_flight():
        with m.track_in_flight():
            assert value(m, "ehis_requests_in_flight") == 2
        assert value(m, "ehis_requests_in_flight") == 1
    with pytest.raises(RuntimeError), m.track_in_flight():
        raise RuntimeError("handler failed")
    assert value(m, "ehis_requests_in_flight") == 0


def test_breaker_collector_reads_sources_at_scrape_time() -> None:
    statuses = [status("din", in_flight=3), status("vergiler", BreakerState.OPEN, last_success_at=None)]
    m = HubMetrics(sources=lambda: statuses)

    def state(source: str, s: str) -> float | None:
        return value(m, "ehis_source_breaker_state", source=source, state=s)

    assert [state("din", s) for s in ("closed", "open", "half_open")] == [1, 0, 0]
    assert [state("vergiler", s) for s in ("closed", "open", "half_open")] == [0, 1, 0]
    assert value(m, "ehis_source_in_flight", source="din") == 3
    assert value(m, "ehis_source_last_success_timestamp_seconds", source="din") == statuses[0].last_success_at.timestamp()
    assert value(m, "ehis_source_last_success_timestamp_seconds", source="vergiler") is None  # never succeeded

    statuses[1] = status("vergiler", BreakerState.HALF_OPEN)
    assert [state("vergiler", s) for s in ("closed", "open", "half_open")] == [0, 0, 1]


def test_naive_last_success_is_read_as_utc() -> None:
    naive = datetime(2025, 3, 14, 9, 30)
    m = HubMetrics(sources=lambda: [status("din", last_success_at=naive)])
    assert value(m, "ehis_source_last_success_timestamp_seconds", source="din") == \
        naive.replace(tzinfo=UTC).timestamp()


def test_failing_status_source_does_not_break_the_scrape() -> None:
    calls = []

    def broken() -> list[SourceStatus]:
        calls.append(1)
        raise RuntimeError("breaker registry gone")

    m = HubMetrics(sources=broken)  # registering must not call it
    assert calls == []
    m.request_done("din.person", "emek-muqavilesi", "ok", "hit", 0.001)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(m.registry).decode())}
    assert families["ehis_source_breaker_state"].samples == []
    assert families["ehis_requests"].samples  # the rest still scraped
    assert calls == [1]


def test_each_hub_has_its_own_registry() -> None:
    a, b = HubMetrics(), HubMetrics()  # would raise "Duplicated timeseries" on a shared registry
    a.request_done("din.person", "emek-muqavilesi", "ok", "hit", 0.001)
    assert value(a, "ehis_requests_total", service="din.person", caller="emek-muqavilesi", outcome="ok") == 1
    assert value(b, "ehis_requests_total", service="din.person", caller="emek-muqavilesi", outcome="ok") is None
    assert REGISTRY.get_sample_value("ehis_requests_total",
                                     {"service": "din.person", "caller": "emek-muqavilesi", "outcome": "ok"}) is None
    shared = CollectorRegistry()
    assert HubMetrics(shared).registry is shared


def test_exposition_names_and_label_sets() -> None:
    m = HubMetrics(sources=lambda: [status("din")])
    m.request_done("din.person", "emek-muqavilesi", "ok", "miss", 0.1)
    m.source_call_done("din", "ok", 0.1)
    labels = {f.name: {k for s in f.samples for k in s.labels if k != "le"}
              for f in text_string_to_metric_families(generate_latest(m.registry).decode())
              if not f.name.endswith("_created")}  # prometheus_client's creation times of counters
    assert labels == {
        "ehis_requests": {"service", "caller", "outcome"},
        "ehis_request_duration_seconds": {"service"},
        "ehis_cache_requests": {"service", "status"},
        "ehis_source_calls": {"source", "outcome"},
        "ehis_source_call_duration_seconds": {"source"},
        "ehis_requests_in_flight": set(),
        "ehis_dead_letters": set(),
        "ehis_source_breaker_state": {"source", "state"},
        "ehis_source_in_flight": {"source"},
        "ehis_source_last_success_timestamp_seconds": {"source"},
    }
