"""Event metrics, in the hub's registry: what came in, what was refused, published, delivered,
and how far behind each source and each subscriber's queue is.

Labels are bounded and carry no personal data: source codes, routing keys, subsystems, codes.
The outbox and queue gauges are set by `EventMonitor` (they need the database and the broker,
which a scrape must not wait for).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ehis.events.models import Event

LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class EventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.received_total = Counter("ehis_events_received", "events stored, by source and how they came (push, poll)",
                                      ["source", "via"], registry=r)
        self.refused_total = Counter("ehis_events_refused", "events or pushes refused (signature_invalid, "
                                     "invalid_input), never delivered", ["source", "code"], registry=r)
        self.published_total = Counter("ehis_events_published", "events confirmed by the broker, by routing key",
                                       ["key"], registry=r)
        self.delivered_total = Counter("ehis_events_delivered", "events put in a subscriber's queue",
                                       ["subscriber"], registry=r)
        self.publish_failures = Counter("ehis_events_publish_failures", "publishing rounds that failed "
                                        "(the broker or the database): retried", registry=r)
        self.poll_failures = Counter("ehis_events_poll_failures", "polls of a source that failed, by error code",
                                     ["source", "code"], registry=r)
        self.last_poll = Gauge("ehis_events_last_poll_timestamp_seconds", "when a source was last polled "
                               "successfully by this worker", ["source"], registry=r)
        self.source_lag = Gauge("ehis_events_source_lag_seconds", "for the last event received from a source: "
                                "from when it happened to when the hub stored it", ["source"], registry=r)
        self.publish_lag = Histogram("ehis_events_publish_lag_seconds", "from an event's arrival at the hub to "
                                     "the broker's confirm", buckets=LAG_BUCKETS, registry=r)
        self.outbox_pending = Gauge("ehis_events_outbox_pending", "events stored and not yet published", registry=r)
        self.outbox_oldest = Gauge("ehis_events_outbox_oldest_seconds", "age of the oldest event not yet "
                                   "published (0: none waits)", registry=r)
        self.queue_depth = Gauge("ehis_events_queue_depth", "events waiting in a subscriber's queue (not yet "
                                 "acknowledged)", ["subscriber"], registry=r)

    def received(self, source: str, via: str, event: Event) -> None:
        self.received_total.labels(source=source, via=via).inc()
        self.source_lag.labels(source=source).set(max(0.0, (event.received_at - event.occurred_at).total_seconds()))

    def refused(self, source: str, code: str) -> None:
        self.refused_total.labels(source=source, code=code).inc()

    def published(self, event: Event, subscribers: Iterable[str]) -> None:
        self.published_total.labels(key=event.key).inc()
        self.publish_lag.observe(max(0.0, time.time() - event.received_at.timestamp()))
        for subscriber in subscribers:
            self.delivered_total.labels(subscriber=subscriber).inc()

    def publish_failed(self) -> None:
        self.publish_failures.inc()

    def polled(self, source: str) -> None:
        self.last_poll.labels(source=source).set(time.time())

    def poll_failed(self, source: str, code: str) -> None:
        self.poll_failures.labels(source=source, code=code).inc()
