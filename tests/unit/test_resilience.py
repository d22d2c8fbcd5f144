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
        SOURCE, policy(attempts=3, backoff_initial=0, backoff_max=0, breaker_failures=1000), rng=random.Random(1)
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

    class State:  # the one field the wait function reads
        def __init__(self, n: int) -> None:
            self.attempt_number = n

    for n in (1, 2, 3, 4, 5):
        sleeps.append(guard._backoff(State(n)))  # type: ignore[arg-type]
    assert 0.05 <= sleeps[0] <= 0.1
    assert 0.1 <= sleeps[1] <= 0.2
    assert all(0.15 <= s <= 0.3 for s in sleeps[2:])
    assert len(set(sleeps[2:])) == 3  # jittered, not all equal to the cap


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
        SOURCE, policy(attempts=100, backoff_initial=0.05, backoff_max=0.1, breaker_failures=1000)
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


def breaker_guard(clock: FakeClock, events: list[BreakerEvent], **overrides: object) -> SourceGuard:
    settings = {"attempts": 1, "breaker_failures": 3, "breaker_reset": 30.0} | overrides
    return SourceGuard(SOURCE, policy(**settings), clock=clock, on_change=events.append)


async def open_breaker(guard: SourceGuard, failures: int = 3) -> None:
    for _ in range(failures):
        with pytest.raises(SourceTimeout):
            await guard.run(Script(SourceTimeout("din did not answer within 5 s", source=SOURCE)), None)


async def test_breaker_opens_after_n_consecutive_failures_and_fails_fast() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events)
    await open_breaker(guard, 2)
    assert guard.status().state is BreakerState.CLOSED
    assert events == []
    await open_breaker(guard, 1)

    status = guard.status()
    assert status.state is BreakerState.OPEN
    assert status.consecutive_failures == 3
    assert status.last_error == "timeout"
    assert status.opened_at is not None and status.opened_at.tzinfo is UTC
    assert [e.state for e in events] == [BreakerState.OPEN]
    assert events[0].source == SOURCE
    assert events[0].reason.startswith("timeout")
    assert events[0].at.tzinfo is UTC

    script = Script()
    with pytest.raises(SourceUnavailable) as exc:
        await guard.run(script, None)
    assert script.calls == 0
    assert isinstance(exc.value, CircuitOpen)
    assert exc.value.retryable
    assert exc.value.code == "unavailable"
    assert "open" in exc.value.message and "next probe in 30.0 s" in exc.value.message


async def test_breaker_half_opens_after_reset_lets_one_probe_through_and_closes_on_success() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events)
    await open_breaker(guard)
    clock.advance(29.9)
    assert guard.status().state is BreakerState.OPEN
    clock.advance(0.1)
    assert guard.status().state is BreakerState.HALF_OPEN  # due, reported before anyone probes

    probe = Gate()
    probing = asyncio.create_task(guard.run(probe, None))
    await settle()
    assert probe.calls == 1

    bystander = Script()
    with pytest.raises(SourceUnavailable) as exc:
        await guard.run(bystander, None)
    assert bystander.calls == 0
    assert "probe" in exc.value.message

    probe.release.set()
    assert await probing == "ok"
    status = guard.status()
    assert status.state is BreakerState.CLOSED
    assert status.opened_at is None
    assert status.consecutive_failures == 0
    assert [e.state for e in events] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    assert await guard.run(Script(), None) == "ok"


async def test_probe_failure_reopens_for_a_new_reset_period() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events)
    await open_breaker(guard)
    clock.advance(30)
    with pytest.raises(SourceFault):
        await guard.run(Script(SourceFault("din answered HTTP 404", source=SOURCE)), None)
    assert guard.status().state is BreakerState.OPEN
    assert [e.state for e in events] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN]
    assert events[-1].reason.startswith("source_fault")

    script = Script()
    with pytest.raises(CircuitOpen):
        await guard.run(script, None)
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        await guard.run(script, None)
    assert script.calls == 0
    clock.advance(1)
    assert await guard.run(script, None) == "ok"
    assert events[-1].state is BreakerState.CLOSED


async def test_a_cancelled_probe_decides_nothing_and_the_next_caller_probes() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events)
    await open_breaker(guard)
    clock.advance(30)
    probing = asyncio.create_task(guard.run(Gate(), None))
    await settle()
    probing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probing
    assert guard.status().state is BreakerState.HALF_OPEN
    assert await guard.run(Script(), None) == "ok"
    assert guard.status().state is BreakerState.CLOSED


async def test_the_guards_own_deadline_refusal_counts_as_neither() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_failures=1)
    for _ in range(5):
        with pytest.raises(DeadlineExceeded):
            await guard.run(Script(), 0)
    assert guard.status().state is BreakerState.CLOSED
    assert guard.status().consecutive_failures == 0


async def test_not_found_and_invalid_input_are_answers_not_failures() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events)
    await open_breaker(guard, 2)
    with pytest.raises(NotFound):
        await guard.run(Script(NotFound("no such person", source=SOURCE)), None)
    assert guard.status().consecutive_failures == 0
    assert guard.status().last_success_at is not None
    await open_breaker(guard, 2)
    with pytest.raises(InvalidInput):
        await guard.run(Script(InvalidInput("bad fin", source=SOURCE)), None)
    await open_breaker(guard, 2)
    assert guard.status().state is BreakerState.CLOSED
    assert events == []


async def test_signature_invalid_counts_as_a_failure() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_failures=2)
    for _ in range(2):
        with pytest.raises(SignatureInvalid):
            await guard.run(Script(SignatureInvalid("the signed answer carries another request's hash")), None)
    assert guard.status().state is BreakerState.OPEN
    assert events[0].reason.startswith("signature_invalid")


async def test_a_retry_loop_stops_once_the_breaker_opens() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, attempts=5, breaker_failures=2)
    script = Script(*(SourceTimeout(f"try {i}", source=SOURCE) for i in range(5)))
    with pytest.raises(SourceTimeout) as exc:
        await guard.run(script, None)
    assert script.calls == 2
    assert exc.value.message == "try 1"  # the upstream error, not the breaker's refusal


async def test_a_retry_refused_by_a_breaker_opened_during_its_backoff_raises_its_own_error() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, attempts=3, breaker_failures=2, backoff_initial=0.1, backoff_max=0.1)
    mine = Script(SourceTimeout("mine", source=SOURCE))
    retrying = asyncio.create_task(guard.run(mine, None))
    await settle()  # first attempt failed, now in its backoff sleep
    await open_breaker(guard, 1)  # another caller's failure opens the breaker meanwhile
    assert guard.status().state is BreakerState.OPEN
    with pytest.raises(SourceTimeout) as exc:
        await retrying
    assert exc.value.message == "mine"  # why the retry was needed, not the breaker's refusal
    assert mine.calls == 1


async def test_event_reason_keeps_details_after_a_colon_out() -> None:
    clock, events = FakeClock(), []
    guard = breaker_guard(clock, events, breaker_failures=1)
    error = SourceFault("answer does not match the contract: value 'AZE1234567' is not accepted", source=SOURCE)
    with pytest.raises(SourceFault):
        await guard.run(Script(error), None)
    assert events[0].reason == "source_fault: answer does not match the contract"


async def test_a_failing_listener_does_not_break_the_call() -> None:
    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("listener defect")

    guard = SourceGuard(SOURCE, policy(attempts=1, breaker_failures=1), on_change=broken)
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
