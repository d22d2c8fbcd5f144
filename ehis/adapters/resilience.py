"""One guard per source around every upstream call: deadline, retries, breaker, bulkhead, rate limit.

Callers learn quickly and truthfully what happened (a typed error, never tenacity's RetryError,
never after their deadline), and a struggling source gets fewer calls, not more.

Per call, the breaker first (fails fast, consumes nothing; it hears the call's outcome once,
retries included). Per attempt, in this order: the caller's deadline, the breaker again for a
retry (no retry once it has opened), the rate limit token, a bulkhead slot, then the call with
budget min(read_timeout, time left), which the guard enforces too. A gate that refuses a *retry*
ends the run with the upstream error that made the retry necessary; refusing the first attempt
raises the refusal itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ehis.adapters.breaker import BreakerConfig, CircuitBreaker, Ticket
from ehis.adapters.events import BreakerEvent, BreakerState, SourceStatus
from ehis.config import SourcePolicy
from ehis.errors import DeadlineExceeded, EhisError, SourceTimeout

T = TypeVar("T")


def retryable(error: BaseException) -> bool:
    """Worth another attempt of an idempotent read: a typed error the source may not repeat.

    DeadlineExceeded is retryable for the caller (later, with a new deadline), never inside this one.
    """
    return isinstance(error, EhisError) and error.retryable and not isinstance(error, DeadlineExceeded)


class _Refused(Exception):
    """A gate stopped an attempt before any upstream call; carries the error for the caller."""

    def __init__(self, error: EhisError):
        super().__init__(error.message)
        self.error = error


class TokenBucket:
    """`rate` calls per second on average, up to `burst` at once. Tokens may go negative: each
    one is a reservation, so concurrent waiters queue up in time instead of racing."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def reserve(self, latest: float | None) -> float | None:
        """Take a token and return the seconds until it is due; None (nothing taken) if it is due
        only at or after `latest`, so a caller never waits for a call it cannot make."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        wait = max(0.0, (1.0 - self._tokens) / self.rate)
        if wait > 0 and latest is not None and now + wait >= latest:
            return None
        self._tokens -= 1.0
        return wait

    def refund(self) -> None:
        """Give back a reserved token whose caller gave up waiting."""
        self._tokens = min(float(self.burst), self._tokens + 1.0)


class SourceGuard:
    """Everything between the hub and one source; build one per source per process."""

    def __init__(
        self,
        source: str,
        policy: SourcePolicy,
        *,
        on_change: Callable[[BreakerEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        system: str | None = None,
    ):
        self.source = source  # the endpoint this guard protects (a source, or one provider of it)
        self.system = system or source  # the source system errors name
        self.policy = policy
        self._clock = clock
        self._rng = rng or random.Random()
        self._breaker = CircuitBreaker(source, breaker_config(policy), clock=clock, on_change=on_change, rng=self._rng)
        self._slots = asyncio.Semaphore(policy.max_concurrency)
        self._bucket = TokenBucket(policy.rate_limit, policy.rate_burst, clock) if policy.rate_limit else None
        self._in_flight = 0

    async def run(self, attempt: Callable[[float], Awaitable[T]], deadline_s: float | None) -> T:
        """attempt(budget_s) makes ONE upstream call that must finish within budget_s seconds.

        `deadline_s` is what is left of the caller's deadline now (None: only the policy's limits).
        Retries only retryable typed errors, only while the deadline leaves room and the breaker
        stays closed; raises the last typed error.
        """
        deadline = None if deadline_s is None else self._clock() + deadline_s
        if self._remaining(deadline) <= 0:
            raise self._late(f"the caller's deadline passed before {self.source} was called", self.system)
        try:
            ticket = self._breaker.admit()
        except EhisError as open_circuit:
            open_circuit.source = self.system
            raise
        upstream: list[EhisError] = []  # errors of the attempts made, newest last

        async def once() -> T:
            try:
                return await self._attempt(attempt, deadline, ticket, first=not upstream)
            except EhisError as error:
                upstream.append(error)
                raise

        try:
            result = await self._attempts(once, deadline)
        except _Refused as refused:
            error = upstream[-1] if upstream else refused.error
            error.source = self.system
            self._breaker.done(ticket, error)
            raise error from None
        except EhisError as error:
            error.source = self.system
            self._breaker.done(ticket, error)
            raise
        except BaseException as error:
            self._breaker.done(ticket, error)
            raise
        self._breaker.done(ticket)
        return result

    async def _attempts(self, once: Callable[[], Awaitable[T]], deadline: float | None) -> T:
        """The first attempt directly, the retries by tenacity.

        Why not tenacity from the start: most calls succeed at once, and setting up its retry
        state costs about 40 us per call, as much as the rest of the guard. A retryable first
        failure hands over to tenacity as if it had made that attempt itself (same stop rule,
        same backoff: `_stop` and `_backoff` count the attempt already made).
        """
        try:
            return await once()
        except EhisError as error:
            if not retryable(error):
                raise
            pause = self._pause(1)
            if self._stops(1, pause, deadline):
                raise
        await asyncio.sleep(pause)
        retrying = AsyncRetrying(
            stop=self._stop(deadline),
            wait=self._backoff,
            retry=retry_if_exception(retryable),
            reraise=True,
        )
        return await retrying(once)

    def status(self) -> SourceStatus:
        """This source as this process sees it now. The state is HALF_OPEN as soon as the reset time
        has passed (the next call will probe), even before anyone has probed."""
        b = self._breaker
        state = b.state
        return SourceStatus(
            source=self.source,
            state=state,
            in_flight=self._in_flight,
            consecutive_failures=b.consecutive_failures,
            last_success_at=b.last_success_at,
            last_failure_at=b.last_failure_at,
            last_error=b.last_error,
            opened_at=b.opened_at if state is not BreakerState.CLOSED else None,
        )

    async def _attempt(
        self, attempt: Callable[[float], Awaitable[T]], deadline: float | None, ticket: Ticket, *, first: bool
    ) -> T:
        """One gated upstream call of an admitted call."""
        budget = float("inf")
        if self._remaining(deadline) <= 0:
            raise _Refused(self._late(f"the caller's deadline passed before {self.source} was called"))
        if not first and not self._breaker.allows_retry(ticket):
            raise _Refused(self._late(f"the circuit to {self.source} opened before this retry"))
        await self._token(deadline)
        async with self._slot(deadline):
            budget = min(self.policy.read_timeout, self._remaining(deadline))
            if budget <= 0:
                raise _Refused(self._late(f"the caller's deadline passed before {self.source} was called"))
            try:
                return await self._call(attempt, budget)
            except SourceTimeout:
                if budget >= self.policy.read_timeout or self._remaining(deadline) > 0.001:
                    raise
                # the caller's deadline, not the source, cut this call short: not the source's failure
                raise self._late(
                    f"{self.source} had not answered when the caller's deadline came ({budget:.3g} s)") from None

    async def _call(self, attempt: Callable[[float], Awaitable[T]], budget: float) -> T:
        """The attempt, held to its budget even if it ignores it, so it cannot outlive the deadline."""
        self._in_flight += 1
        try:
            async with asyncio.timeout(budget) as scope:
                return await attempt(budget)
        except TimeoutError:
            if scope.expired():
                raise SourceTimeout(f"{self.source} did not answer within {budget:.3g} s", source=self.source) from None
            raise
        finally:
            self._in_flight -= 1

    async def _token(self, deadline: float | None) -> None:
        if self._bucket is None:
            return
        wait = self._bucket.reserve(deadline)
        if wait is None:
            raise _Refused(self._late(
                f"{self.source}'s rate limit ({self._bucket.rate:g}/s) has no call free before the caller's deadline"
            ))
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                self._bucket.refund()
                raise

    @asynccontextmanager
    async def _slot(self, deadline: float | None) -> AsyncIterator[None]:
        """A bulkhead slot, waited for only until the caller's deadline."""
        remaining = None if deadline is None else max(0.0, self._remaining(deadline))
        try:
            async with asyncio.timeout(remaining):
                await self._slots.acquire()
        except TimeoutError:
            raise _Refused(self._late(
                f"all {self.policy.max_concurrency} slots to {self.source} were busy until the caller's deadline"
            )) from None
        try:
            yield
        finally:
            self._slots.release()

    def _stop(self, deadline: float | None) -> Callable[[RetryCallState], bool]:
        """tenacity's stop rule, counting the first attempt `_attempts` made before it."""

        def stop(state: RetryCallState) -> bool:
            return self._stops(state.attempt_number + 1, state.upcoming_sleep, deadline)

        return stop

    def _stops(self, attempts_made: int, pause: float, deadline: float | None) -> bool:
        """Stop retrying when attempts are used up, the breaker is open, or the backoff would end
        at or after the deadline (then the last error is raised, without a useless sleep)."""
        if attempts_made >= self.policy.attempts:
            return True
        if self._breaker.state is BreakerState.OPEN:
            return True
        return deadline is not None and self._clock() + pause >= deadline

    def _backoff(self, state: RetryCallState) -> float:
        """tenacity's wait, counting the first attempt `_attempts` made before it."""
        return self._pause(state.attempt_number + 1)

    def _pause(self, attempts_made: int) -> float:
        """Exponential from backoff_initial, capped at backoff_max, with equal jitter (half fixed,
        half random) so callers that failed together do not retry together."""
        step = min(self.policy.backoff_max, self.policy.backoff_initial * 2 ** (attempts_made - 1))
        return self._rng.uniform(step / 2, step)

    def _remaining(self, deadline: float | None) -> float:
        return float("inf") if deadline is None else deadline - self._clock()

    def _late(self, message: str, source: str | None = None) -> DeadlineExceeded:
        return DeadlineExceeded(message, source=source or self.source)


def breaker_config(policy: SourcePolicy) -> BreakerConfig:
    """The breaker's part of a source's policy."""
    return BreakerConfig(
        window=policy.breaker_window, minimum_calls=policy.breaker_minimum_calls,
        failure_rate=policy.breaker_failure_rate, slow_call_duration=policy.breaker_slow_call_duration,
        slow_call_rate=policy.breaker_slow_call_rate, half_open_calls=policy.breaker_half_open_calls,
        open_initial=policy.breaker_open_initial, open_max=policy.breaker_open_max,
    )

