"""A circuit breaker per source: spares a failing source and tells callers at once that it is down.

Pure bookkeeping on an injectable monotonic clock (no I/O, no awaits), so the guard consults it
between awaits on one event loop and tests move time by hand instead of sleeping.
"""

from __future__ import annotations

import logging
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


class CircuitOpen(SourceUnavailable):
    """The breaker refused the call and nothing was sent upstream.

    Code `unavailable` and retryable, like SourceUnavailable, so the bus and callers need no new code.
    """


@dataclass(frozen=True)
class Ticket:
    """One admitted call; `probe` marks the single call whose outcome decides a half-open breaker."""

    probe: bool


def reason_of(error: EhisError) -> str:
    """Error code and the message up to its first colon: our adapters put details (fault texts,
    schema messages that may quote personal data) after a colon, so they stay out of events."""
    head = error.message.split(":", 1)[0].strip()
    return f"{error.code}: {head[:REASON_MAX]}"


class CircuitBreaker:
    """CLOSED -> OPEN after `failures` consecutive failures; OPEN -> HALF_OPEN once `reset` seconds
    have passed (noticed lazily, by the next admission or status read); one probe then decides."""

    def __init__(
        self,
        source: str,
        *,
        failures: int,
        reset: float,
        clock: Callable[[], float],
        on_change: Callable[[BreakerEvent], None] | None = None,
    ):
        self.source = source
        self.failures = failures
        self.reset = reset
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._opened_mono = 0.0
        self._reason = ""
        self._probing = False
        self.consecutive_failures = 0
        self.last_success_at: datetime | None = None
        self.last_failure_at: datetime | None = None
        self.last_error: str | None = None
        self.opened_at: datetime | None = None

    @property
    def state(self) -> BreakerState:
        """The state now; an OPEN breaker whose reset time has passed becomes HALF_OPEN here."""
        if self._state is BreakerState.OPEN and self._probe_due_in() <= 0:
            self._change(BreakerState.HALF_OPEN, self._reason)
        return self._state

    def admit(self) -> Ticket:
        """Let a call through, or raise CircuitOpen without any upstream call."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Ticket(probe=False)
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return Ticket(probe=True)
        raise CircuitOpen(self._refusal(), source=self.source)

    def done(self, ticket: Ticket, error: BaseException | None = None) -> None:
        """Record how an admitted call ended: no error (success), or the exception it raised."""
        if error is None or isinstance(error, ANSWERS):
            self._succeeded(ticket)
        elif isinstance(error, FAILURES):
            self._failed(ticket, error)
        elif ticket.probe:
            self._probing = False  # neither (our own deadline, cancellation, a defect): next call probes

    def _succeeded(self, ticket: Ticket) -> None:
        self.consecutive_failures = 0
        self.last_success_at = datetime.now(UTC)
        if ticket.probe:
            self._probing = False
            self._change(BreakerState.CLOSED, "")

    def _failed(self, ticket: Ticket, error: EhisError) -> None:
        self.consecutive_failures += 1
        self.last_failure_at = datetime.now(UTC)
        self.last_error = str(error.code)
        opens = ticket.probe or (
            self._state is BreakerState.CLOSED and self.consecutive_failures >= self.failures
        )
        if ticket.probe:
            self._probing = False
        if opens:
            self._opened_mono = self._clock()
            self.opened_at = datetime.now(UTC)
            self._change(BreakerState.OPEN, reason_of(error))

    def _probe_due_in(self) -> float:
        return self._opened_mono + self.reset - self._clock()

    def _refusal(self) -> str:
        if self._state is BreakerState.HALF_OPEN:
            return f"the circuit to {self.source} is half open and its one probe call is in flight; try again shortly"
        due = max(0.0, self._probe_due_in())
        at = (datetime.now(UTC) + timedelta(seconds=due)).isoformat(timespec="seconds")
        return f"the circuit to {self.source} is open ({self._reason}); next probe in {due:.1f} s, at {at}"

    def _change(self, state: BreakerState, reason: str) -> None:
        self._state = state
        self._reason = reason
        if state is BreakerState.CLOSED:
            self.opened_at = None
        if self._on_change is None:
            return
        try:
            self._on_change(BreakerEvent(self.source, state, datetime.now(UTC), reason))
        except Exception:  # a listener's defect must not fail the call that changed the state
            log.exception("breaker listener failed on %s -> %s", self.source, state)
