"""The whole hub in one process (memory:// bus, SQLite log, simulators in process): cache,
coalescing, retries, breaker and outages, deadlines, and the exchange log behind every reply."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.runtime import RunningHub
from ehis.simulators import create_app
from ehis.simulators.faults import parse_rules
from ehis.testing import hub_in_process

CALLER = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")


def fins(count: int, seed: int) -> list[str]:
    """Distinct valid FINs that exist in the simulated registry (none starts with 0)."""
    rng = random.Random(seed)
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return list(dict.fromkeys("".join(rng.choices(alphabet, k=7)) for _ in range(count * 2)))[:count]


@pytest.fixture
def simulators(pki):
    return create_app(pki, rng=random.Random(7))


@pytest.fixture
async def hub(tmp_path: Path, pki, simulators) -> AsyncIterator[RunningHub]:
    async with hub_in_process(tmp_path, pki, simulators) as running:
        yield running


def calls_to_din(simulators) -> int:
    return len(simulators.state.journal.entries("din"))


def faults(simulators, *rules: dict) -> None:
    simulators.state.faults.reset()
    simulators.state.faults.add(parse_rules(list(rules)))


def client(running: RunningHub, requester: Requester = CALLER) -> BusClient:
    return BusClient(running.transport, requester=requester, default_timeout=10)


async def test_100_concurrent_identical_requests_make_one_upstream_call(hub, simulators) -> None:
    replies = await asyncio.gather(*(client(hub).request("din.person", {"fin": "2KLM3NP"}) for _ in range(100)))
    assert all(r.status == "ok" for r in replies)
    statuses = [r.meta.cache for r in replies]
    assert statuses.count("miss") == 1
    assert statuses.count("coalesced") >= 1 and set(statuses) <= {"miss", "coalesced", "hit"}
    assert calls_to_din(simulators) == 1  # the simulator's journal: one request received


async def test_a_fresh_answer_is_reused_until_the_caller_asks_for_fresh_data(hub, simulators) -> None:
    first = await client(hub).request("din.person", {"fin": "2KLM3NP"})
    again = await client(hub).request("din.person", {"fin": "2klm3np"})  # the same person, spelt differently
    fresh = await client(hub).request("din.person", {"fin": "2KLM3NP"}, fresh=True)
    assert (first.meta.cache, again.meta.cache, fresh.meta.cache) == ("miss", "hit", "miss")
    assert again.data == first.data and again.meta.evidence == first.meta.evidence
    assert calls_to_din(simulators) == 2


async def test_the_cache_never_shows_a_forbidden_caller_what_it_holds(hub) -> None:
    assert (await client(hub).request("din.person", {"fin": "2KLM3NP"})).status == "ok"
    refused = await client(hub, Requester(subsystem="monitorinq")).request("din.person", {"fin": "2KLM3NP"})
    assert refused.error is not None and refused.error.code == "forbidden" and refused.data is None


async def test_not_found_is_cached_briefly(hub, simulators) -> None:
    replies = [await client(hub).request("din.person", {"fin": "0AB12CD"}) for _ in range(2)]
    assert [r.error.code for r in replies if r.error] == ["not_found", "not_found"]
    assert [r.meta.cache for r in replies] == ["miss", "hit"]
    assert calls_to_din(simulators) == 1


async def test_retries_turn_a_20_percent_transient_fault_rate_into_99_percent_success(hub, simulators) -> None:
    faults(simulators, {"kind": "http_503", "system": "din", "probability": 0.2})
    replies = [await client(hub).request("din.person", {"fin": fin}) for fin in fins(300, seed=3)]
    ok = sum(r.status == "ok" for r in replies)
    fired = simulators.state.faults.rules()[0].fired
    assert fired >= 40  # the faults really happened...
    assert ok / len(replies) >= 0.99  # ...and retries hid them from the callers


async def test_no_retry_for_a_bad_signature(hub, simulators) -> None:
    faults(simulators, {"kind": "bad_signature", "system": "din"})
    reply = await client(hub).request("din.person", {"fin": "2KLM3NP"})
    assert reply.error is not None and reply.error.code == "signature_invalid"
    assert calls_to_din(simulators) == 1


async def test_breaker_opens_fails_fast_records_the_outage_and_recovers(tmp_path, pki, simulators) -> None:
    policy = {"din": {"attempts": 1, "breaker_window": 3, "breaker_minimum_calls": 3,
                       "breaker_open_initial": 0.5, "breaker_half_open_calls": 1}}
    async with hub_in_process(tmp_path, pki, simulators, sources=policy) as hub:
        faults(simulators, {"kind": "http_503", "system": "din"})
        people = iter(fins(10, seed=5))
        for _ in range(3):
            reply = await client(hub).request("din.person", {"fin": next(people)})
            assert reply.error is not None and reply.error.code == "unavailable"
        assert calls_to_din(simulators) == 3
        started = time.monotonic()
        fast = await client(hub).request("din.person", {"fin": next(people)})
        assert fast.error is not None and fast.error.code == "unavailable" and "circuit" in fast.error.message
        assert fast.error.retryable and time.monotonic() - started < 0.2
        assert calls_to_din(simulators) == 3  # failed fast: the source was spared
        await hub.parts.outages.flush()
        [outage] = await hub.parts.outages.list("din")
        assert outage.ended_at is None and "unavailable" in outage.reason

        simulators.state.faults.reset()
        await asyncio.sleep(0.65)  # the open delay (0.5 s +- 20 %): the next calls are probes
        assert (await client(hub).request("din.person", {"fin": next(people)})).status == "ok"
        assert hub.parts.hub.source_statuses()[0].state == "closed"
        await hub.parts.outages.flush()
        [outage] = await hub.parts.outages.list("din")
        assert outage.ended_at is not None


@pytest.mark.parametrize("rule,timeout,code", [
    ({"kind": "hang", "system": "din"}, 1.0, "deadline_exceeded"),
    ({"kind": "latency", "system": "din", "latency_ms": 3000}, 1.0, "deadline_exceeded"),
])
async def test_the_reply_reaches_the_caller_by_its_deadline(hub, simulators, rule, timeout, code) -> None:
    faults(simulators, rule)
    started = time.monotonic()
    reply = await client(hub).request("din.person", {"fin": "2KLM3NP"}, timeout=timeout)
    took = time.monotonic() - started
    assert reply.error is not None and reply.error.code == code
    assert "din had not answered" in reply.error.message  # the worker's reply, not the client giving up
    assert took <= timeout


async def test_a_source_slower_than_its_read_timeout_is_a_timeout(tmp_path, pki, simulators) -> None:
    async with hub_in_process(tmp_path, pki, simulators, sources={"din": {"read_timeout": 0.3, "attempts": 2}}) as hub:
        faults(simulators, {"kind": "latency", "system": "din", "latency_ms": 2000})
        started = time.monotonic()
        reply = await client(hub).request("din.person", {"fin": "2KLM3NP"}, timeout=5)
        assert reply.error is not None and reply.error.code == "timeout" and reply.error.retryable
        assert time.monotonic() - started < 1.5  # two attempts of 0.3 s and a short backoff


async def test_every_reply_is_recorded_in_the_exchange_log_first(hub) -> None:
    ok = await client(hub).request("din.person", {"fin": "2klm3np"})
    refused = await client(hub, Requester(subsystem="monitorinq", user="X1", purpose="audit")).request(
        "din.person", {"fin": "2KLM3NP"})
    log = hub.parts.log
    assert log is not None
    records = {r.request_id: r for r in await log.search(LogQuery(subject="2KLM3NP"))}
    mine = records[ok.id]
    assert (mine.subsystem, mine.user, mine.purpose) == ("emek-muqavilesi", "AZ0000001", "contract 2025/118")
    assert (mine.service, mine.source, mine.outcome, mine.cache) == ("din.person", "din", "ok", "miss")
    assert mine.signer == ok.meta.signed_by and mine.evidence == ok.meta.evidence and len(mine.evidence) == 64
    denied = records[refused.id]
    assert (denied.subsystem, denied.outcome, denied.error_code) == ("monitorinq", "error", "forbidden")
    assert (await log.verify()).ok


async def test_a_record_the_database_cannot_take_goes_to_the_spool_and_the_answer_is_sent(hub) -> None:
    assert hub.parts.log is not None and hub.parts.recorder.durable is not None
    await hub.parts.log.close()  # the exchange log's database is gone
    reply: Reply = await client(hub).request("din.person", {"fin": "2KLM3NP"})
    assert reply.status == "ok"
    durable = hub.parts.recorder.durable
    assert durable.degraded and durable.spooled == 1 and durable.spool.holding > 0


async def test_no_answer_leaves_the_hub_when_the_log_cannot_record_it(hub) -> None:
    assert hub.parts.log is not None and hub.parts.recorder.durable is not None
    await hub.parts.log.close()  # the exchange log's database is gone
    hub.parts.recorder.durable.spool.close()  # and so is the local disk
    reply: Reply = await client(hub).request("din.person", {"fin": "2KLM3NP"})
    assert reply.status == "error" and reply.data is None
    assert reply.error is not None and reply.error.code == "internal" and reply.error.retryable
    assert "could not be recorded" in reply.error.message


@pytest.mark.redis
async def test_two_workers_share_answers_through_redis(tmp_path, pki, simulators, redis_url) -> None:
    from redis.asyncio import Redis

    fin = fins(1, seed=int(time.time()))[0]  # a person no earlier run has cached
    secret = f"shared by the workers of one Redis {fin}"  # each data dir would make its own otherwise
    async with hub_in_process(tmp_path / "a", pki, simulators, cache_url=redis_url, cache_key_secret=secret) as first, \
            hub_in_process(tmp_path / "b", pki, simulators, cache_url=redis_url, cache_key_secret=secret) as second:
        fetched = await client(first).request("din.person", {"fin": fin})
        shared = await client(second).request("din.person", {"fin": fin})
    redis = Redis.from_url(redis_url)
    try:
        await redis.delete(*[key async for key in redis.scan_iter("ehis:cache:din.person:*")])
    finally:
        await redis.aclose()
    assert (fetched.meta.cache, shared.meta.cache) == ("miss", "hit")
    assert shared.data == fetched.data and shared.meta.signed_by == fetched.meta.signed_by
    assert calls_to_din(simulators) == 1


async def test_metrics_count_requests_cache_and_in_flight(hub, simulators) -> None:
    faults(simulators, {"kind": "latency", "system": "din", "latency_ms": 300})
    metrics = hub.parts.metrics

    def value(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    slow = asyncio.ensure_future(client(hub).request("din.person", {"fin": "2KLM3NP"}))
    await asyncio.sleep(0.15)
    assert value("ehis_requests_in_flight") == 1
    await slow
    await client(hub).request("din.person", {"fin": "2KLM3NP"})
    assert value("ehis_requests_in_flight") == 0
    assert value("ehis_requests_total", service="din.person", caller="emek-muqavilesi", outcome="ok") == 2
    assert value("ehis_cache_requests_total", service="din.person", status="hit") == 1
    assert value("ehis_source_breaker_state", source="din", state="closed") == 1
