"""How event delivery stands, for `ehis events status` and the admin page's events panel: the
outbox, each source's events and poller, and each subscriber's queue. Read from the shared
database and the broker, so any worker answers for all."""

from __future__ import annotations

import time
from typing import Any

from ehis.bus.events import EventBus
from ehis.events.hub import PUBLISHER_LEASE, poll_lease
from ehis.events.store import EventStore


async def delivery_status(store: EventStore, bus: EventBus | None, subscribers: list[str]) -> dict[str, Any]:
    """Counts and ages only (no event content: no personal data). A subscriber's `waiting` is
    None when the broker cannot be asked."""
    stats = await store.stats()
    now = time.time()
    waiting = {s: await bus.depth(s) if bus is not None else None for s in subscribers}

    def ago(at: float | None) -> float | None:
        return round(now - at, 1) if at is not None else None

    def holder(name: str) -> str | None:
        lease = stats.leases.get(name)
        return lease[0] if lease and lease[1] > now else None

    return {
        "outbox": {"pending": stats.pending, "oldest_pending_seconds": ago(stats.oldest_pending_at)},
        "publisher": holder(PUBLISHER_LEASE),
        "sources": {code: {
            "received": stats.received.get(code, 0),
            "last_received_seconds_ago": ago(stats.last_received_at.get(code)),
            "cursor": stats.cursors[code][0] if code in stats.cursors else None,
            "polled_seconds_ago": ago(stats.cursors[code][1]) if code in stats.cursors else None,
            "poller": holder(poll_lease(code)),
        } for code in sorted(set(stats.received) | set(stats.cursors))},
        "subscribers": waiting,
    }
