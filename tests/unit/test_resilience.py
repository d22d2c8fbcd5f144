"""SourceGuard: retries, deadline, circuit breaker, bulkhead and rate limit, with scripted attempts.

Breaker resets use a fake clock; deadlines, bulkhead and rate limit use the real one with
generous margins (lower bounds tight, upper bounds loose) so a slow CI machine cannot flake them.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC

import pytest

from ehis.adapters.breaker import CircuitOpen
from ehis.adapters.events import BreakerEvent, BreakerState
from ehis.adapters.resilience import SourceGuard, TokenBucket
from ehis.config import SourcePolicy
from ehis.errors import (
    DeadlineExceeded,
    EhisError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)

SOURCE = "din"


def policy(**overrides: object) -> SourcePolicy:
    """Tiny backoffs so retries cost milliseconds; tests override what they exercise."""
    return SourcePolicy(**({"backoff_initial": 0.001, "backoff_max": 0.002} | overrides))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Script:
    """An attempt that raises (or returns) the scripted outcomes in order, then answers "ok"."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.budgets: list[float] = []

    @property
    def calls(self) -> int:
        return len(self.budgets)

    async def __call__(self, budget: float) -> object:
        self.budgets.append(budget)
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Gate:
    """An attempt that blocks until released, counting how many are inside at once."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.release = asyncio.Event()
        self.error = error
        self.inside = 0
        self.max_inside = 0
        self.calls = 0

    async def __call__(self, budget: float) -> str:
        self.calls += 1
        self.inside += 1
        self.max_inside = max(self.max_inside, self.inside)
        try:
            await self.release.wait()
        finally:
            self.inside -= 1
        if self.error is not None:
            raise self.error
        return "ok"


async def settle() -> None:
    """Let every runnable task reach its next await."""
    for _ in range(5):
        await asyncio.sleep(0)


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        lambda m: SourceTimeout(m, source=SOURCE),
        lambda m: SourceUnavailable(m, source=SOURCE),
        lambda m: SourceFault(m, source=SOURCE, retryable=True),
    ],
    ids=["timeout", "unavailable", "retryable-fault"],
)
async def test_retryable_errors_are_retried_up_to_attempts_then_the_last_is_raised(kind) -> None:
    script = Script(kind("first"), kind("second"), kind("third"), "never reached")
    guard = SourceGuard(SOURCE, policy(attempts=3))
    with pytest.raises(EhisError) as exc:
        await guard.run(script, None)
    assert script.calls == 3
    assert exc.value.message == "third"  # the last typed error, not tenacity's RetryError
    assert type(exc.value) is type(kind("x"))


async def test_a_retry_that_succeeds_returns_the_answer() -> None:
    script = Script(SourceTimeout("slow", source=SOURCE), SourceUnavailable("down", source=SOURCE), "answer")
    guard = SourceGuard(SOURCE, policy(attempts=3))
    assert await guard.run(script, None) == "answer"
    assert script.calls == 3
    assert guard.status().consecutive_failures == 0


@pytest.mark.parametrize(
    "error",
    [
        SignatureInvalid("tampered", source=SOURCE),
        InvalidInput("bad fin", source=SOURCE),
        NotFound("no such person", source=SOURCE),
        SourceFault("client fault", source=SOURCE, retryable=False),
        DeadlineExceeded("adapter saw no budget", source=SOURCE),  # retryable for the caller, not here
        ValueError("a defect, not the source"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_non_retryable_errors_are_called_exactly_once(error: BaseException) -> None:
    script = Script(error)
    guard = SourceGuard(SOURCE, policy(attempts=5))
    with pytest.raises(type(error)) as exc:
        await guard.run(script, None)
    assert exc.value is error
    assert script.calls == 1


async def test_a_20_percent_transient_failure_rate_with_3_attempts_succeeds_99_percent() -> None:
    flaky = random.Random(20240601)
    calls = 0

    async def attempt(budget: float) -> str:
        nonlocal calls
        calls += 1
        if flaky.random() < 0.2:
            raise SourceTimeout("transient", source=SOURCE)
        return "ok"

    guard = SourceGuard(
        SOURCE, policy(attempts=3, backoff_initial=0, backoff_max=0, breaker_minimum_calls=1000, breaker_window=1000), rng=random.Random(1)
    )
    successes = 0
    for _ in range(1000):
        try:
            await guard.run(attempt, 5.0)
            successes += 1
        except SourceTimeout:
            pass
    assert successes >= 990
    assert 1150 <= calls <= 1350  # about 1000 * (1 + 0.2 + 0.04): the retries did the work


async def test_backoff_grows_and_is_capped_with_jitter() -> None:
    sleeps: list[float] = []
    guard = SourceGuard(SOURCE, policy(backoff_initial=0.1, backoff_max=0.3), rng=random.Random(7))
    for attempts_made in (1, 2, 3, 4, 5):
        sleeps.append(guard._pause(attempts_made))
    assert 0.05 <= sleeps[0] <= 0.1
    assert 0.1 <= sleeps[1] <= 0.2
    assert all(0.15 <= s <= 0.3 for s in sleeps[2:])
    assert len(set(sleeps[2:])) == 3  # jittered, not all equal to the cap


async def test_the_pauses_between_attempts_follow_the_backoff_from_the_first_failure(monkeypatch) -> None:
    """The first attempt is made outside tenacity: the pause after it and after the next one are
    the first and second steps of the backoff all the same."""
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay: float, *args: object) -> None:
        if delay > 0:
            pauses.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    script = Script(SourceTimeout("1", source=SOURCE), SourceTimeout("2", source=SOURCE), "answer")
    guard = SourceGuard(SOURCE, policy(attempts=3, backoff_initial=0.1, backoff_max=10), rng=random.Random(3))
    assert await guard.run(script, None) == "answer"
    twin = random.Random(3)
    assert pauses == [twin.uniform(0.05, 0.1), twin.uniform(0.1, 0.2)]


# --- deadline --------------------------------------------------------------------------------


@pytest.mark.parametrize("deadline_s", [0.0, -1.0])
async def test_no_upstream_call_once_the_deadline_has_passed(deadline_s: float) -> None:
    script = Script()
    guard = SourceGuard(SOURCE, policy())
    with pytest.raises(DeadlineExceeded) as exc:
        await guard.run(script, deadline_s)
    assert script.calls == 0
    assert exc.value.source == SOURCE


async def test_no_retry_after_the_deadline_passed_during_an_attempt() -> None:
    clock = FakeClock()

    async def slow_failure(budget: float) -> str:
        clock.advance(2.0)  # the attempt used up the caller's whole deadline
        raise SourceTimeout("slow", source=SOURCE)

    calls = 0

    async def counted(budget: float) -> str:
        nonlocal calls
        calls += 1
        return await slow_failure(budget)

    guard = SourceGuard(SOURCE, policy(attempts=5), clock=clock)
    with pytest.raises(DeadlineExceeded):  # the caller's deadline cut it short, not the source
        await guard.run(counted, 1.0)
    assert calls == 1
    assert guard.status().consecutive_failures == 0  # so it does not count against the source


async def test_each_attempt_gets_at_most_what_is_left_of_the_deadline() -> None:
    script = Script(SourceTimeout("a", source=SOURCE), SourceTimeout("b", source=SOURCE))
    guard = SourceGuard(SOURCE, policy(attempts=3, read_timeout=5.0, backoff_initial=0.02, backoff_max=0.02))
    assert await guard.run(script, 2.0) == "ok"
    assert script.budgets[0] <= 2.0
    assert script.budgets[1] < script.budgets[0] <= 2.0  # shrinks with time spent
    no_deadline = Script()
    await guard.run(no_deadline, None)
    assert no_deadline.budgets == [5.0]  # only the policy's read timeout


async def test_retries_stop_within_the_deadline() -> None:
    calls = 0

    async def always_slow_and_failing(budget: float) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(min(0.05, budget / 2))  # always within its budget
        raise SourceUnavailable("down", source=SOURCE)

    guard = SourceGuard(
        SOURCE, policy(attempts=100, backoff_initial=0.05, backoff_max=0.1, breaker_minimum_calls=1000, breaker_window=1000)
    )
    started = time.monotonic()
    with pytest.raises(SourceUnavailable):  # the last upstream error, not DeadlineExceeded
        await guard.run(always_slow_and_failing, 0.5)
    elapsed = time.monotonic() - started
    assert elapsed <= 0.5 + 0.25
    assert 2 <= calls < 100


async def test_a_backoff_that_would_end_after_the_deadline_is_not_slept() -> None:
    script = Script(SourceTimeout("slow", source=SOURCE))
    guard = SourceGuard(SOURCE, policy(attempts=3, backoff_initial=2.0, backoff_max=2.0))
    started = time.monotonic()
    with pytest.raises(SourceTimeout):
        await guard.run(script, 0.5)
    assert time.monotonic() - started < 0.4  # stopped at once instead of sleeping >= 1 s
    assert script.calls == 1


async def test_an_attempt_that_ignores_its_budget_is_cut_off_at_the_deadline() -> None:
    async def hangs(budget: float) -> str:
        await asyncio.sleep(30)
        return "too late"

    guard = SourceGuard(SOURCE, policy(attempts=1, read_timeout=5.0))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await guard.run(hangs, 0.2)
    assert 0.15 <= time.monotonic() - started < 1.5
    assert guard.status().in_flight == 0
    assert guard.status().consecutive_failures == 0


async def test_a_source_slower_than_its_read_timeout_counts_against_it() -> None:
    async def hangs(budget: float) -> str:
        await asyncio.sleep(30)
        return "too late"

    guard = SourceGuard(SOURCE, policy(attempts=1, read_timeout=0.2))
    with pytest.raises(SourceTimeout):
        await guard.run(hangs, 5.0)
    assert guard.status().consecutive_failures == 1


# --- circuit breaker -------------------------------------------------------------------------

TIMEOUT = SourceTimeout("din did not answer within 5 s", source=SOURCE)


def breaker_guard(clock: FakeClock, events: list[BreakerEvent], **overrides: object) -> SourceGuard:
    settings = {"attempts": 1, "breaker_window": 4, "breaker_minimum_calls": 4, "breaker_failure_rate": 0.5,
                "breaker_half_open_calls": 2, "breaker_open_initial": 1.0, "breaker_open_max": 4.0} | overrides
    return SourceGuard(SOURCE, policy(**settings), clock=clock, on_change=events.append, rng=random.Random(7))


async def fail(guard: SourceGuard, times: int = 1, error: EhisError = TIMEOUT) -> None:
    for _ in range(times):
        with pytest.raises(type(error)):
            await guard.run(Script(*[error] * guard.policy.attempts), None)


async def open_breaker(guard: SourceGuard) -> None:
    await fail(guard, guard.policy.breaker_minimum_calls)
    assert guard.status().state is BreakerState.OPEN


async def succeed(guard: SourceGuard, times: int = 1) -> None:
    for _ in range(times):
        assert await guard.run(Script(), None) == "ok"


async def test_breaker_waits_for_the_minimum_number_of_calls() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events)
    await fail(guard, 3)
    assert guard.status().state is BreakerState.CLOSED and events == []
    await fail(guard)
    status = guard.status()
    assert status.state is BreakerState.OPEN
    assert status.last_error == "timeout"
    assert status.opened_at is not None and status.opened_at.tzinfo is UTC
    assert [e.state for e in events] == [BreakerState.OPEN]
    assert events[0].source == SOURCE and events[0].reason.startswith("timeout")

    script = Script()
    with pytest.raises(SourceUnavailable) as exc:
        await guard.run(script, None)
    assert script.calls == 0
    assert isinstance(exc.value, CircuitOpen)
    assert exc.value.retryable and exc.value.code == "unavailable"
    assert "open" in exc.value.message and "next probe in" in exc.value.message


async def test_breaker_opens_on_the_failure_rate_of_the_window_not_on_runs_of_failures() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_window=10, breaker_minimum_calls=10)
    await succeed(guard, 6)
    await fail(guard, 4)  # four in a row, but 40 % of the window
    assert guard.status().state is BreakerState.CLOSED
    await succeed(guard, 1)
    await fail(guard, 1)  # the window slides: 5 of the last 10 failed
    assert guard.status().state is BreakerState.OPEN


async def test_retries_within_a_call_are_not_counted_as_calls() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, attempts=4, breaker_window=2, breaker_minimum_calls=2)
    for _ in range(10):  # every call fails three attempts, then the fourth answers
        assert await guard.run(Script(TIMEOUT, TIMEOUT, TIMEOUT), None) == "ok"
    assert guard.status().state is BreakerState.CLOSED and events == []


async def test_slow_calls_open_the_breaker() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_slow_call_duration=2.0, breaker_slow_call_rate=0.75)

    async def slow(budget: float) -> str:
        clock.advance(2.5)
        return "ok"

    for _ in range(2):
        assert await guard.run(slow, None) == "ok"
    await succeed(guard)
    assert guard.status().state is BreakerState.CLOSED  # 2 of 3 slow, below the minimum of calls
    assert await guard.run(slow, None) == "ok"  # 3 of 4 slow: 75 %
    assert guard.status().state is BreakerState.OPEN
    assert events[-1].reason.startswith("slow calls")


async def test_half_open_lets_several_probes_through_and_closes_when_they_answer() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events)
    await open_breaker(guard)
    clock.advance(0.7)
    assert guard.status().state is BreakerState.OPEN  # the first delay is 1 s +- 20 %
    clock.advance(0.6)
    assert guard.status().state is BreakerState.HALF_OPEN  # due, reported before anyone probes

    probes = [Gate(), Gate()]
    probing = [asyncio.create_task(guard.run(p, None)) for p in probes]
    await settle()
    assert [p.calls for p in probes] == [1, 1]
    bystander = Script()
    with pytest.raises(CircuitOpen) as exc:
        await guard.run(bystander, None)
    assert bystander.calls == 0 and "probe" in exc.value.message

    for p in probes:
        p.release.set()
    assert await asyncio.gather(*probing) == ["ok", "ok"]
    status = guard.status()
    assert status.state is BreakerState.CLOSED and status.opened_at is None and status.consecutive_failures == 0
    assert [e.state for e in events] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    await succeed(guard)


async def test_the_open_delay_grows_while_the_source_stays_down_and_resets_after_recovery() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_half_open_calls=1)
    await open_breaker(guard)
    delays = []
    for _ in range(6):
        delays.append(guard._breaker.open_for())
        clock.advance(delays[-1])
        await fail(guard)  # the probe fails: open again, longer
        assert guard.status().state is BreakerState.OPEN
    assert delays[0] == pytest.approx(1.0, abs=0.21)
    assert delays[1] > delays[0] and delays[2] > delays[1]
    assert max(delays) <= 4.0  # open_max
    assert delays[-1] >= 4.0 * 0.8
    assert events[-1].reason.startswith("timeout")
    clock.advance(guard._breaker.open_for())
    await succeed(guard)
    assert guard.status().state is BreakerState.CLOSED
    await open_breaker(guard)
    assert guard._breaker.open_for() == pytest.approx(1.0, abs=0.21)  # short again


async def test_a_cancelled_probe_decides_nothing_and_the_next_caller_probes() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_half_open_calls=1)
    await open_breaker(guard)
    clock.advance(2)
    probing = asyncio.create_task(guard.run(Gate(), None))
    await settle()
    probing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probing
    assert guard.status().state is BreakerState.HALF_OPEN
    await succeed(guard)
    assert guard.status().state is BreakerState.CLOSED


async def test_the_callers_deadline_counts_as_neither() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_minimum_calls=1, breaker_window=1)
    for _ in range(5):
        with pytest.raises(DeadlineExceeded):
            await guard.run(Script(), 0)
    assert guard.status().state is BreakerState.CLOSED
    assert guard.status().consecutive_failures == 0


async def test_a_timeout_cut_short_by_the_callers_deadline_is_not_the_sources_failure() -> None:
    guard = SourceGuard(SOURCE, policy(attempts=1, read_timeout=5.0, breaker_window=1, breaker_minimum_calls=1))

    async def hangs(budget: float) -> str:
        await asyncio.sleep(30)
        return "too late"

    for _ in range(3):
        with pytest.raises(DeadlineExceeded):
            await guard.run(hangs, 0.05)
    assert guard.status().state is BreakerState.CLOSED


async def test_not_found_and_invalid_input_are_answers_not_failures() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_failure_rate=0.75)
    await fail(guard, 2)
    await fail(guard, 1, NotFound("no such person", source=SOURCE))
    assert guard.status().consecutive_failures == 0
    assert guard.status().last_success_at is not None
    await fail(guard, 1, InvalidInput("bad fin", source=SOURCE))
    assert guard.status().state is BreakerState.CLOSED  # answers are successes: 2 of 4 failed
    await fail(guard, 1)
    assert guard.status().state is BreakerState.CLOSED
    assert events == []


async def test_signature_invalid_counts_as_a_failure() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_window=2, breaker_minimum_calls=2)
    await fail(guard, 2, SignatureInvalid("the signed answer carries another request's hash"))
    assert guard.status().state is BreakerState.OPEN
    assert events[0].reason.startswith("signature_invalid")


async def test_a_retry_loop_stops_once_the_breaker_opens() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, attempts=5, breaker_window=1, breaker_minimum_calls=1,
                          backoff_initial=0.05, backoff_max=0.05)
    mine = Script(*(SourceTimeout(f"try {i}", source=SOURCE) for i in range(5)))
    retrying = asyncio.create_task(guard.run(mine, None))
    await settle()  # first attempt failed, now in its backoff sleep
    await fail(guard, 1, SignatureInvalid("forged"))  # another caller's failed call opens the breaker meanwhile
    assert guard.status().state is BreakerState.OPEN
    with pytest.raises(SourceTimeout) as exc:
        await retrying
    assert exc.value.message == "try 0"  # why the retry was needed, not the breaker's refusal
    assert mine.calls == 1
    assert [e.state for e in events] == [BreakerState.OPEN]  # the stale call does not count again


async def test_event_reason_keeps_details_after_a_colon_out() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_window=1, breaker_minimum_calls=1)
    error = SourceFault("answer does not match the contract: value 'AZE1234567' is not accepted", source=SOURCE)
    await fail(guard, 1, error)
    assert events[0].reason == "source_fault: answer does not match the contract"


async def test_a_failing_listener_does_not_break_the_call() -> None:
    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("listener defect")

    guard = SourceGuard(SOURCE, policy(attempts=1, breaker_window=1, breaker_minimum_calls=1), on_change=broken)
    with pytest.raises(SourceTimeout):
        await guard.run(Script(SourceTimeout("slow", source=SOURCE)), None)
    assert guard.status().state is BreakerState.OPEN


# --- bulkhead --------------------------------------------------------------------------------


async def test_bulkhead_caps_concurrent_attempts() -> None:
    gate = Gate()
    guard = SourceGuard(SOURCE, policy(max_concurrency=3))
    tasks = [asyncio.create_task(guard.run(gate, None)) for _ in range(10)]
    await settle()
    assert gate.inside == 3
    assert guard.status().in_flight == 3
    gate.release.set()
    assert await asyncio.gather(*tasks) == ["ok"] * 10
    assert gate.max_inside == 3
    assert gate.calls == 10
    assert guard.status().in_flight == 0


async def test_a_caller_waits_for_a_slot_only_until_its_deadline() -> None:
    gate = Gate()
    guard = SourceGuard(SOURCE, policy(max_concurrency=1))
    holder = asyncio.create_task(guard.run(gate, None))
    await settle()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as exc:
        await guard.run(gate, 0.2)
    assert 0.15 <= time.monotonic() - started < 1.5
    assert "slots" in exc.value.message and exc.value.source == SOURCE
    assert gate.calls == 1  # the waiter never reached the source
    gate.release.set()
    assert await holder == "ok"
    assert guard.status().state is BreakerState.CLOSED  # a busy bulkhead is not the source's failure


async def test_a_retry_that_finds_no_slot_before_the_deadline_raises_the_upstream_error() -> None:
    guard = SourceGuard(SOURCE, policy(max_concurrency=1, attempts=3, backoff_initial=0.1, backoff_max=0.1))
    mine = Script(SourceUnavailable("mine", source=SOURCE))
    retrying = asyncio.create_task(guard.run(mine, 0.5))
    await settle()  # first attempt failed, now in its backoff sleep
    gate = Gate()
    holder = asyncio.create_task(guard.run(gate, None))  # takes the only slot meanwhile
    await settle()
    with pytest.raises(SourceUnavailable) as exc:
        await retrying
    assert exc.value.message == "mine"
    assert mine.calls == 1
    gate.release.set()
    assert await holder == "ok"


# --- rate limit ------------------------------------------------------------------------------


async def test_rate_limit_spaces_calls() -> None:
    script = Script()
    guard = SourceGuard(SOURCE, policy(rate_limit=20.0, rate_burst=1))
    started = time.monotonic()
    for _ in range(5):
        await guard.run(script, None)
    assert time.monotonic() - started >= 0.18  # 4 waits of 50 ms after the first free token
    assert script.calls == 5


async def test_rate_limit_burst_goes_at_once() -> None:
    script = Script()
    guard = SourceGuard(SOURCE, policy(rate_limit=1.0, rate_burst=3))
    started = time.monotonic()
    await asyncio.gather(*(guard.run(script, None) for _ in range(3)))
    assert time.monotonic() - started < 0.5
    assert script.calls == 3


async def test_rate_limit_fails_fast_when_the_token_comes_after_the_deadline() -> None:
    script = Script()
    guard = SourceGuard(SOURCE, policy(rate_limit=2.0, rate_burst=1))  # a token every 500 ms
    await guard.run(script, None)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as exc:
        await guard.run(script, 0.3)
    assert time.monotonic() - started < 0.2  # failed at once, did not wait for the deadline
    assert "rate limit" in exc.value.message
    assert script.calls == 1
    started = time.monotonic()
    assert await guard.run(script, 2.0) == "ok"  # a deadline the token fits in: waits for it
    assert time.monotonic() - started >= 0.35
    assert script.calls == 2


def test_token_bucket_reserves_in_order_and_refuses_past_latest() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=1, clock=clock)
    assert bucket.reserve(None) == 0.0
    assert bucket.reserve(None) == pytest.approx(0.5)
    assert bucket.reserve(None) == pytest.approx(1.0)  # queued behind the previous reservation
    assert bucket.reserve(clock.now + 1.2) is None  # would be due at 1.5 s
    clock.advance(1.5)
    assert bucket.reserve(clock.now + 0.1) == pytest.approx(0.0)
