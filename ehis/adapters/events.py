"""What the resilience layer tells the rest of the hub about a source: breaker changes and status.

Plain data, so the outage store, the metrics and the admin page depend on these types only,
not on the breaker's implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls flow
    OPEN = "open"  # calls fail fast until the reset time has passed
    HALF_OPEN = "half_open"  # one probe call decides: closed on success, open again on failure


@dataclass(frozen=True)
class BreakerEvent:
    """A breaker changed state; an OPEN starts an outage of `source`, the next CLOSED ends it."""

    source: str
    state: BreakerState
    at: datetime
    reason: str = ""  # the error code and message that opened it (never personal data)


@dataclass(frozen=True)
class SourceStatus:
    """One source as this worker sees it now, for health checks, metrics and the admin page."""

    source: str
    state: BreakerState
    in_flight: int
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None  # error code, e.g. "timeout"
    opened_at: datetime | None  # when the breaker last opened, while it is not closed
