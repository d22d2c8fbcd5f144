"""Prometheus metrics of one hub, in a registry of its own.

A private registry (not prometheus_client's global one) lets tests, and several hubs in one
process, each count their own traffic. Labels carry only bounded, non-personal values: service
and source codes from the catalogue, the caller's subsystem, outcome codes. Never a FIN, a
user or a purpose, which would leak personal data and explode the number of series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from ehis.adapters.events import BreakerState, SourceStatus
from ehis.catalogue import METASERVICES, SERVICES, SYSTEMS_BY_CODE
from ehis.errors import ErrorCode

log = logging.getLogger(__name__)

# Chosen for this hub's range, so percentiles (histogram_quantile) are read where it spends its time:
# a cached answer takes 1-3 ms, an uncached source call 5-50 ms, a slow or retried one up to the
# caller's deadline (10 s by default; 30 s for a deadline raised past it).
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0015, 0.002, 0.003, 0.004, 0.005,  # cache hits
    0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1,  # source calls
    0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0,  # slow sources, retries, deadlines
)
CACHE_STATUSES = frozenset({"hit", "miss", "coalesced"})
OUTCOMES = frozenset({"ok", *(code.value for code in ErrorCode)})
UNKNOWN = "unknown"  # a service or source not in the catalogue: callers can send any name
OTHER = "other"  # an outcome that is neither "ok" nor an error code

SourcesFn = Callable[[], list[SourceStatus]]


def _service_label(service: str) -> str:
    return service if service in SERVICES or service in METASERVICES else UNKNOWN


def _source_label(source: str) -> str:
    return source if source in SYSTEMS_BY_CODE else UNKNOWN


def _outcome_label(outcome: str) -> str:
    return outcome if outcome in OUTCOMES else OTHER


def _timestamp(value: datetime) -> float:
    """Seconds since the epoch; a naive datetime is UTC, as everywhere in the hub."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class SourceStatusCollector:
    """Breaker state, calls in flight and last success per source, read at scrape time.

    Read live from the resilience layer rather than mirrored into gauges, so a scrape can never
    show a state the breaker has already left.
    """

    def __init__(self, sources: SourcesFn):
        self._sources = sources

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("ehis_source_breaker_state",
                              "1 for the breaker's current state, 0 for the others",
                              labels=["source", "state"]),
            GaugeMetricFamily("ehis_source_in_flight", "calls to the source in flight now", labels=["source"]),
            GaugeMetricFamily("ehis_source_last_success_timestamp_seconds",
                              "when the source last answered successfully (absent: never since start)",
                              labels=["source"]),
        )

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so registering does not call `sources()`."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        state, in_flight, last_success = self._families()
        try:
            statuses = list(self._sources())
        except Exception as exc:  # noqa: BLE001 - a failing status source must not break /metrics
            log.warning("source status unavailable for metrics: %s", type(exc).__name__)
            statuses = []
        for status in statuses:
            for candidate in BreakerState:
                state.add_metric([status.source, candidate.value], 1.0 if status.state == candidate else 0.0)
            in_flight.add_metric([status.source], float(status.in_flight))
            if status.last_success_at is not None:
                last_success.add_metric([status.source], _timestamp(status.last_success_at))
        return [state, in_flight, last_success]


class StampStatus(Protocol):
    """What the checkpoint task tells monitoring (ehis.audit.checkpointer.Checkpointer)."""

    max_unstamped: float | None

    def delay(self) -> float: ...

    def overdue(self) -> bool: ...


class StampCollector:
    """`ehis_checkpoint_unstamped_seconds` and `ehis_checkpoint_stamp_overdue`, read at scrape time."""

    def __init__(self, status: StampStatus):
        self._status = status

    def describe(self) -> Iterable[Metric]:
        return self._families()

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (GaugeMetricFamily("ehis_checkpoint_unstamped_seconds",
                                  "how long the oldest signed checkpoint has waited for an RFC 3161 time-stamp"),
                GaugeMetricFamily("ehis_checkpoint_stamp_overdue",
                                  "1 when that wait passed max_unstamped and the hub stopped answering"))

    def collect(self) -> Iterable[Metric]:
        delay, overdue = self._families()
        delay.add_metric([], self._status.delay())
        overdue.add_metric([], 1.0 if self._status.overdue() else 0.0)
        return [delay, overdue]


class HubMetrics:
    """The hub's counters and histograms, and the registry `/metrics` exposes."""

    def __init__(self, registry: CollectorRegistry | None = None, sources: SourcesFn = list,
                 callers: Collection[str] | None = None):
        """`callers`: the known subsystems; any other caller name is counted as "unknown", so a
        body on the embedded bus cannot mint label values."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self.callers = frozenset(callers) if callers is not None else None
        r = self.registry
        self.requests = Counter("ehis_requests", "requests answered, by outcome (ok or error code)",
                                ["service", "caller", "outcome"], registry=r)
        self.request_duration = Histogram("ehis_request_duration_seconds", "time to answer a request, per service",
                                          ["service"], buckets=DURATION_BUCKETS, registry=r)
        self.cache_requests = Counter("ehis_cache_requests", "requests by cache status (hit, miss, coalesced)",
                                      ["service", "status"], registry=r)
        self.source_calls = Counter("ehis_source_calls", "calls to a source system, by outcome",
                                    ["source", "outcome"], registry=r)
        self.source_call_duration = Histogram("ehis_source_call_duration_seconds",
                                              "time of one call to a source, its retries included, per source",
                                              ["source"], buckets=DURATION_BUCKETS, registry=r)
        self.in_flight = Gauge("ehis_requests_in_flight", "requests being handled now", registry=r)
        self.dead_letters = Gauge("ehis_dead_letters", "requests in the dead-letter queue (expired or refused; "
                                  "RabbitMQ only, read every 15 s)", registry=r)
        r.register(SourceStatusCollector(sources))

    def request_done(self, service: str, caller: str, outcome: str, cache: str | None, seconds: float) -> None:
        """Count one answered request; `cache` is None when no source was asked (refused early)."""
        label = _service_label(service)
        if self.callers is not None and caller not in self.callers:
            caller = "unknown"
        self.requests.labels(service=label, caller=caller, outcome=_outcome_label(outcome)).inc()
        self.request_duration.labels(service=label).observe(max(seconds, 0.0))
        if cache is not None:
            if cache in CACHE_STATUSES:
                self.cache_requests.labels(service=label, status=cache).inc()
            else:
                log.warning("cache status %r not counted: expected one of %s", cache, sorted(CACHE_STATUSES))

    def source_call_done(self, source: str, outcome: str, seconds: float) -> None:
        """Count one call to a source with its outcome ("ok" or the error code), whatever the request's fate."""
        label = _source_label(source)
        self.source_calls.labels(source=label, outcome=_outcome_label(outcome)).inc()
        self.source_call_duration.labels(source=label).observe(max(seconds, 0.0))

    def watch_checkpoints(self, checkpoints: StampStatus) -> None:
        """Expose how long the oldest checkpoint has waited for its RFC 3161 time-stamp."""
        self.registry.register(StampCollector(checkpoints))

    def track_in_flight(self) -> AbstractContextManager[None]:
        """`with metrics.track_in_flight():` around handling one request (sync or async code)."""
        return _InFlight(self.in_flight)


class _InFlight(AbstractContextManager[None]):
    def __init__(self, gauge: Gauge):
        self._gauge = gauge

    def __enter__(self) -> None:
        self._gauge.inc()

    def __exit__(self, *exc: object) -> None:
        self._gauge.dec()

