"""A circuit breaker per source: spares a failing source and tells callers at once that it is down.

It judges *calls* (one caller's request to the source, retries included), never single attempts,
over a sliding window of the last `window` calls, as resilience libraries do (resilience4j's
count-based window): it opens when, with at least `minimum_calls` in the window, the share of
failed calls reaches `failure_rate` or the share of calls slower than `slow_call_duration` reaches
`slow_call_rate`. A breaker that counted consecutive failed attempts opened under ordinary faults
at high concurrency, where a few fast failures in a row are common.

Open, it refuses calls for a delay that starts at `open_initial` and grows (x1.5, with jitter,
capped at `open_max`) each time the source is still down, so a short outage costs little more
than itself and a long one is asked rarely. Then `half_open_calls` probe calls go through; the
breaker closes or opens again on their failure rate.

Pure bookkeeping on an injectable monotonic clock (no I/O, no awaits), so the guard consults it
between awaits on one event loop and tests move time by hand instead of sleeping.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ehis.adapters.events import BreakerEvent, BreakerState
from ehis.errors import (
    EhisError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)

log = logging.getLogger(__name__)

# The source misbehaved: these count towards opening the breaker.
FAILURES: tuple[type[EhisError], ...] = (SourceTimeout, SourceUnavailable, SourceFault, SignatureInvalid)
# The source answered (no such record, bad parameters): these count as a success.
ANSWERS: tuple[type[EhisError], ...] = (NotFound, InvalidInput)
REASON_MAX = 120  # characters of an error message kept in a breaker event's reason
GROWTH = 1.5  # each re-opening without a close in between waits this much longer
JITTER = 0.2  # +-20 % on each open delay, so the workers' probes do not all come at once


class CircuitOpen(SourceUnavailable):
    """The breaker refused the call and nothing was sent upstream.

    Code `unavailable` and retryable, like SourceUnavailable, so the bus and callers need no new code.
    """


@dataclass(frozen=True)
class BreakerConfig:
    """The breaker's thresholds (SourcePolicy's breaker_* settings)."""

    window: int = 50
    minimum_calls: int = 20
    failure_rate: float = 0.5
    slow_call_duration: float = 5.0
    slow_call_rate: float = 1.0
    half_open_calls: int = 5
    open_initial: float = 1.0
    open_max: float = 30.0


@dataclass(frozen=True)
class Ticket:
    """One admitted call: when it started, and in which period of the breaker (a call admitted
    before the breaker last changed state tells nothing about the source now)."""

    started: float
    generation: int
    probe: bool


def reason_of(error: EhisError) -> str:
    """Error code and the message up to its first colon: our adapters put details (fault texts,
    schema messages that may quote personal data) after a colon, so they stay out of events."""
    head = error.message.split(":", 1)[0].strip()
    return f"{error.code}: {head[:REASON_MAX]}"


class CircuitBreaker:
    """CLOSED -> OPEN on the window's failure or slow-call rate; OPEN -> HALF_OPEN once the open
    delay has passed (noticed lazily, by the next admission or status read); HALF_OPEN lets
    `half_open_calls` probes through, whose failure rate closes it or opens it again."""

    def __init__(
        self,
        source: str,
        config: BreakerConfig,
        *,
        clock: Callable[[], float],
        on_change: Callable[[BreakerEvent], None] | None = None,
        rng: random.Random | None = None,
    ):
        self.source = source
        self.config = config
        self._clock = clock
        self._on_change = on_change
        self._rng = rng or random.Random()
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._window: deque[tuple[bool, bool]] = deque(maxlen=config.window)  # (failed, slow) per call
        self._opened_mono = 0.0
        self._delay = 0.0
        self._opens = 0  # openings since the last close: the delay grows with them
        self._reason = ""
        self._probes_admitted = 0
        self._probes: list[bool] = []  # failed? per finished probe
        self.consecutive_failures = 0  # failed calls in a row (for the admin page), not what opens it
        self.last_success_at: datetime | None = None
        self.last_failure_at: datetime | None = None
        self.last_error: str | None = None
        self.opened_at: datetime | None = None

    @property
    def state(self) -> BreakerState:
        """The state now; an OPEN breaker whose delay has passed becomes HALF_OPEN here."""
        if self._state is BreakerState.OPEN and self.open_for() <= 0:
            self._change(BreakerState.HALF_OPEN, self._reason)
        return self._state

    def open_for(self) -> float:
        """Seconds until an open breaker lets probes through (0 when it is not open)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_mono + self._delay - self._clock())

    def admit(self) -> Ticket:
        """Let a call through, or raise CircuitOpen without any upstream call."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Ticket(self._clock(), self._generation, probe=False)
        if state is BreakerState.HALF_OPEN and self._probes_admitted < self.config.half_open_calls:
            self._probes_admitted += 1
            return Ticket(self._clock(), self._generation, probe=True)
        raise CircuitOpen(self._refusal(), source=self.source)

    def allows_retry(self, ticket: Ticket) -> bool:
        """A retry within an admitted call is worth making unless the breaker opened since."""
        return self.state is not BreakerState.OPEN or ticket.generation == self._generation

    def done(self, ticket: Ticket, error: BaseException | None = None) -> None:
        """Record how an admitted call ended: no error (success), or the exception it raised.

        Outcomes that say nothing about the source (the caller's deadline, cancellation, a defect of
        ours) are not counted; a probe that ends so frees its place for another probe."""
        now = self._clock()
        slow = now - ticket.started >= self.config.slow_call_duration
        if error is None or isinstance(error, ANSWERS):
            failed = False
            self.consecutive_failures = 0
            self.last_success_at = datetime.now(UTC)
        elif isinstance(error, FAILURES):
            failed = True
            self.consecutive_failures += 1
            self.last_failure_at = datetime.now(UTC)
            self.last_error = str(error.code)
        else:
            if ticket.probe and ticket.generation == self._generation:
                self._probes_admitted -= 1
            return
        if ticket.generation != self._generation:
            return  # admitted before the last change of state: stale news
        reason = reason_of(error) if isinstance(error, EhisError) else "slow calls"
        if ticket.probe:
            self._probe_done(failed, reason)
            return
        self._window.append((failed, slow))
        if self._state is BreakerState.CLOSED and self._exceeded(list(self._window)):
            self._open(reason if failed else f"slow calls: over {self.config.slow_call_duration:g} s")

    def _probe_done(self, failed: bool, reason: str) -> None:
        self._probes.append(failed)
        needed = self.config.half_open_calls
        failures = sum(self._probes)
        to_open = math.ceil(self.config.failure_rate * needed)  # failures that decide it stays down
        if failures >= to_open:
            self._open(reason if failed else "probe calls failed")
        elif len(self._probes) - failures > needed - to_open:
            self._opens = 0
            self._change(BreakerState.CLOSED, "")

    def _exceeded(self, calls: list[tuple[bool, bool]]) -> bool:
        if len(calls) < self.config.minimum_calls:
            return False
        failures = sum(1 for failed, _ in calls if failed)
        slow = sum(1 for _, was_slow in calls if was_slow)
        return failures / len(calls) >= self.config.failure_rate or slow / len(calls) >= self.config.slow_call_rate

    def _open(self, reason: str) -> None:
        base = min(self.config.open_max, self.config.open_initial * GROWTH ** self._opens)
        self._delay = min(self.config.open_max, base * self._rng.uniform(1 - JITTER, 1 + JITTER))
        self._opens += 1
        self._opened_mono = self._clock()
        if self._state is BreakerState.CLOSED:
            self.opened_at = datetime.now(UTC)
        self._change(BreakerState.OPEN, reason)

    def _refusal(self) -> str:
        if self._state is BreakerState.HALF_OPEN:
            return (f"the circuit to {self.source} is half open and its {self.config.half_open_calls} probe calls "
                    "are in flight; try again shortly")
        due = self.open_for()
        at = (datetime.now(UTC) + timedelta(seconds=due)).isoformat(timespec="seconds")
        return f"the circuit to {self.source} is open ({self._reason}); next probe in {due:.1f} s, at {at}"

    def _change(self, state: BreakerState, reason: str) -> None:
        self._state = state
        self._reason = reason
        self._generation += 1
        self._window.clear()
        self._probes = []
        self._probes_admitted = 0
        if state is BreakerState.CLOSED:
            self.opened_at = None
        if self._on_change is None:
            return
        try:
            self._on_change(BreakerEvent(self.source, state, datetime.now(UTC), reason))
        except Exception:  # a listener's defect must not fail the call that changed the state
            log.exception("breaker listener failed on %s -> %s", self.source, state)
