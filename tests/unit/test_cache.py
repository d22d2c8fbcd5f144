"""The response cache: memory backend (TTL, LRU bound) and ResponseCache (keys, single-flight)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from ehis.cache import (
    CachedAnswer,
    CacheStatus,
    MemoryBackend,
    ResponseCache,
    open_cache,
)
from ehis.errors import NotFound, SourceTimeout
from ehis.evidence import Evidence


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A fetch that counts its calls and can be held open, to overlap callers."""

    def __init__(self, answer: CachedAnswer | None = None, error: Exception | None = None) -> None:
        self.calls = 0
        self.answer = answer or CachedAnswer(data={"n": 1}, signed_by="din")
        self.error = error
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.hold = False

    async def __call__(self) -> CachedAnswer:
        self.calls += 1
        self.started.set()
        if self.hold:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.answer.model_copy(update={"data": {"n": self.calls}})


def answer(n: int = 1) -> CachedAnswer:
    return CachedAnswer(data={"n": n}, signed_by="din", fetched_at=datetime(2025, 1, 2, tzinfo=UTC))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> ResponseCache:
    return ResponseCache(MemoryBackend(100, clock=clock), negative_ttl=5)


# --- memory backend ---------------------------------------------------------------------------


async def test_memory_entry_expires_after_ttl(clock: FakeClock) -> None:
    backend = MemoryBackend(10, clock=clock)
    await backend.set("k", b"v", ttl=2)
    clock.now += 1.999
    assert await backend.get("k") == b"v"
    clock.now += 0.001
    assert await backend.get("k") is None
    assert len(backend) == 0 and backend.expirations == 1


async def test_memory_bound_evicts_least_recently_used(clock: FakeClock) -> None:
    backend = MemoryBackend(2, clock=clock)
    await backend.set("a", b"1", ttl=60)
    await backend.set("b", b"2", ttl=60)
    assert await backend.get("a") == b"1"  # a is now more recent than b
    await backend.set("c", b"3", ttl=60)
    assert len(backend) == 2
    assert await backend.get("b") is None
    assert await backend.get("a") == b"1" and await backend.get("c") == b"3"
    assert backend.evictions == 1


async def test_memory_overwrite_refreshes_value_and_ttl(clock: FakeClock) -> None:
    backend = MemoryBackend(2, clock=clock)
    await backend.set("a", b"old", ttl=1)
    clock.now += 0.5
    await backend.set("a", b"new", ttl=1)
    clock.now += 0.9
    assert await backend.get("a") == b"new"
    assert len(backend) == 1


async def test_memory_bound_zero_stores_nothing(clock: FakeClock) -> None:
    backend = MemoryBackend(0, clock=clock)
    await backend.set("a", b"1", ttl=60)
    assert await backend.get("a") is None and len(backend) == 0


async def test_memory_expired_entry_pushed_out_counts_as_expiration(clock: FakeClock) -> None:
    backend = MemoryBackend(1, clock=clock)
    await backend.set("a", b"1", ttl=1)
    clock.now += 2
    await backend.set("b", b"2", ttl=1)
    assert backend.expirations == 1 and backend.evictions == 0


# --- keys --------------------------------------------------------------------------------------


def keys(secret: bytes = b"a secret of sixteen bytes or more") -> ResponseCache:
    return ResponseCache(MemoryBackend(10), negative_ttl=1, key_secret=secret)


def test_key_ignores_param_order_and_differs_per_service_and_params() -> None:
    cache = keys()
    one = cache.key("din.person", {"fin": "5ABC123", "on": "2025-01-02"})
    assert one == cache.key("din.person", {"on": "2025-01-02", "fin": "5ABC123"})
    assert one != cache.key("din.documents", {"fin": "5ABC123", "on": "2025-01-02"})
    assert one != cache.key("din.person", {"fin": "5ABC124", "on": "2025-01-02"})


def test_key_hides_identifiers() -> None:
    key = keys().key("din.person", {"fin": "5ABC123"})
    assert "5ABC123" not in key and "fin" not in key
    service, digest = key.split(":")
    assert service == "din.person" and len(digest) == 64


def test_key_is_a_keyed_hmac_no_dictionary_of_fins_reverses() -> None:
    """The plain digest of a FIN's params is what a dictionary attack computes: a key name must
    be neither that nor the same under another secret; the same secret gives the same name."""
    import hashlib
    import json

    params = {"fin": "5ABC123"}
    key = keys().key("din.person", params)
    digest = key.split(":")[1]
    for guess in (json.dumps(params, sort_keys=True, separators=(",", ":")),
                  json.dumps(["din.person", params], sort_keys=True, separators=(",", ":"))):
        assert digest != hashlib.sha256(guess.encode()).hexdigest()
    assert keys(b"another secret, also long enough").key("din.person", params) != key
    assert keys().key("din.person", params) == key  # workers sharing a secret share entries
    unkeyed = ResponseCache(MemoryBackend(1), negative_ttl=1)  # none given: a random one per cache
    assert unkeyed.key("din.person", params) != ResponseCache(MemoryBackend(1), negative_ttl=1).key("din.person", params)
    with pytest.raises(ValueError):
        ResponseCache(MemoryBackend(1), negative_ttl=1, key_secret=b"short")


def test_key_accepts_dates_as_their_json_form() -> None:
    from datetime import date

    cache = keys()
    assert cache.key("s", {"on": date(2025, 1, 2)}) == cache.key("s", {"on": "2025-01-02"})


# --- ResponseCache -----------------------------------------------------------------------------


async def test_miss_then_hit_until_ttl(cache: ResponseCache, clock: FakeClock) -> None:
    source = Source(answer())
    first, status = await cache.get_or_fetch("k", 10, source)
    assert status is CacheStatus.MISS and first.data == {"n": 1}
    clock.now += 9
    second, status = await cache.get_or_fetch("k", 10, source)
    assert status is CacheStatus.HIT and second == first and source.calls == 1
    clock.now += 1
    third, status = await cache.get_or_fetch("k", 10, source)
    assert status is CacheStatus.MISS and third.data == {"n": 2} and source.calls == 2
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 2 and cache.stats()["stores"] == 2


async def test_hit_round_trips_every_field(cache: ResponseCache) -> None:
    evidence = Evidence(signer="CN=din", digest="ab" * 32, message_id="m-1",
                        fetched_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    stored = CachedAnswer(data={"name": "Əli", "n": [1, 2]}, evidence=evidence)

    async def fetch() -> CachedAnswer:
        return stored

    await cache.get_or_fetch("k", 10, fetch)
    got, status = await cache.get_or_fetch("k", 10, fetch)
    assert status is CacheStatus.HIT and got == stored and got is not stored


@pytest.mark.parametrize("ttl", [None, 0])
async def test_uncached_service_always_fetches(cache: ResponseCache, ttl: float | None) -> None:
    source = Source(answer())
    for _ in range(2):
        _, status = await cache.get_or_fetch("k", ttl, source)
        assert status is CacheStatus.MISS
    assert source.calls == 2 and len(cache.backend) == 0  # type: ignore[arg-type]
    assert cache.stats()["uncached"] == 2 and cache.stats()["stores"] == 0


@pytest.mark.parametrize("ttl", [None, 0])
async def test_concurrent_callers_of_an_uncached_service_share_the_fetch_in_flight(cache: ResponseCache,
                                                                                  ttl: float | None) -> None:
    source = Source(answer())
    source.hold = True
    first = asyncio.create_task(cache.get_or_fetch("k", ttl, source))
    await source.started.wait()
    second = asyncio.create_task(cache.get_or_fetch("k", ttl, source))
    await asyncio.sleep(0)
    source.release.set()
    (_, one), (_, two) = await asyncio.gather(first, second)
    assert (one, two) == (CacheStatus.MISS, CacheStatus.COALESCED) and source.calls == 1
    assert len(cache.backend) == 0  # type: ignore[arg-type]  # still nothing stored
    _, later = await cache.get_or_fetch("k", ttl, source)
    assert later is CacheStatus.MISS and source.calls == 2  # and a later caller asks again


async def test_negative_answer_kept_for_negative_ttl(cache: ResponseCache, clock: FakeClock) -> None:
    gone = CachedAnswer.from_error(NotFound("no such person", source="din"))
    source = Source(gone)
    await cache.get_or_fetch("k", 60, source)
    clock.now += 4.9
    second, status = await cache.get_or_fetch("k", 60, source)
    assert status is CacheStatus.HIT and second.negative
    error = second.exception()
    assert isinstance(error, NotFound) and error.message == "no such person" and error.source == "din"
    clock.now += 0.1  # negative_ttl (5 s) is over, although the service ttl (60 s) is not
    _, status = await cache.get_or_fetch("k", 60, source)
    assert status is CacheStatus.MISS and source.calls == 2


async def test_negative_ttl_never_longer_than_service_ttl(cache: ResponseCache, clock: FakeClock) -> None:
    source = Source(CachedAnswer.from_error(NotFound("none")))
    await cache.get_or_fetch("k", 2, source)  # negative_ttl is 5
    clock.now += 2
    _, status = await cache.get_or_fetch("k", 2, source)
    assert status is CacheStatus.MISS


async def test_negative_ttl_zero_stores_no_negative_answer(clock: FakeClock) -> None:
    cache = ResponseCache(MemoryBackend(10, clock=clock), negative_ttl=0)
    source = Source(CachedAnswer.from_error(NotFound("none")))
    await cache.get_or_fetch("k", 60, source)
    _, status = await cache.get_or_fetch("k", 60, source)
    assert status is CacheStatus.MISS and source.calls == 2
    assert CachedAnswer(data={}).exception() is None


async def test_hundred_concurrent_identical_calls_fetch_once(cache: ResponseCache) -> None:
    source = Source(answer())
    source.hold = True
    calls = [asyncio.create_task(cache.get_or_fetch("k", 10, source)) for _ in range(100)]
    await source.started.wait()
    await asyncio.sleep(0)  # let every caller reach the flight
    source.release.set()
    results = await asyncio.gather(*calls)
    assert source.calls == 1
    statuses = [status for _, status in results]
    assert statuses.count(CacheStatus.MISS) == 1 and statuses.count(CacheStatus.COALESCED) == 99
    assert all(got is results[0][0] for got, _ in results)
    assert cache.stats()["in_flight"] == 0
    _, status = await cache.get_or_fetch("k", 10, source)
    assert status is CacheStatus.HIT


async def test_different_keys_do_not_coalesce(cache: ResponseCache) -> None:
    source = Source(answer())
    results = await asyncio.gather(cache.get_or_fetch("a", 10, source), cache.get_or_fetch("b", 10, source))
    assert source.calls == 2 and [s for _, s in results] == [CacheStatus.MISS, CacheStatus.MISS]


async def test_fetch_error_reaches_every_waiter_and_is_not_stored(cache: ResponseCache) -> None:
    error = SourceTimeout("din did not answer", source="din")
    source = Source(error=error)
    source.hold = True
    calls = [asyncio.create_task(cache.get_or_fetch("k", 10, source)) for _ in range(5)]
    await source.started.wait()
    source.release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(result is error for result in results)
    assert source.calls == 1 and cache.stats()["in_flight"] == 0 and cache.stats()["stores"] == 0
    source.error = None
    _, status = await cache.get_or_fetch("k", 10, source)
    assert status is CacheStatus.MISS and source.calls == 2


async def test_cancelled_leader_does_not_cancel_the_shared_fetch(cache: ResponseCache) -> None:
    source = Source(answer())
    source.hold = True
    leader = asyncio.create_task(cache.get_or_fetch("k", 10, source))
    await source.started.wait()
    waiter = asyncio.create_task(cache.get_or_fetch("k", 10, source))
    await asyncio.sleep(0)
    leader.cancel()  # the leader's deadline passed
    with pytest.raises(asyncio.CancelledError):
        await leader
    source.release.set()
    got, status = await waiter
    assert status is CacheStatus.COALESCED and got.data == {"n": 1} and source.calls == 1
    _, status = await cache.get_or_fetch("k", 10, source)
    assert status is CacheStatus.HIT  # the fetch finished and was stored


async def test_cancelled_waiter_leaves_the_others_alone(cache: ResponseCache) -> None:
    source = Source(answer())
    source.hold = True
    leader = asyncio.create_task(cache.get_or_fetch("k", 10, source))
    await source.started.wait()
    waiter = asyncio.create_task(cache.get_or_fetch("k", 10, source))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    source.release.set()
    _, status = await leader
    assert status is CacheStatus.MISS and source.calls == 1


async def test_flight_whose_callers_all_gave_up_still_stores(cache: ResponseCache) -> None:
    source = Source(answer())
    source.hold = True
    leader = asyncio.create_task(cache.get_or_fetch("k", 10, source))
    await source.started.wait()
    leader.cancel()
    await asyncio.gather(leader, return_exceptions=True)
    source.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert cache.stats()["in_flight"] == 0
    _, status = await cache.get_or_fetch("k", 10, source)
    assert status is CacheStatus.HIT and source.calls == 1


async def test_fresh_bypasses_stored_entry_and_replaces_it(cache: ResponseCache) -> None:
    source = Source(answer())
    await cache.get_or_fetch("k", 10, source)
    got, status = await cache.get_or_fetch("k", 10, source, fresh=True)
    assert status is CacheStatus.MISS and got.data == {"n": 2} and source.calls == 2
    got, status = await cache.get_or_fetch("k", 10, source)
    assert status is CacheStatus.HIT and got.data == {"n": 2}


async def test_fresh_joins_a_fetch_in_flight(cache: ResponseCache) -> None:
    source = Source(answer())
    source.hold = True
    leader = asyncio.create_task(cache.get_or_fetch("k", 10, source))
    await source.started.wait()
    fresh = asyncio.create_task(cache.get_or_fetch("k", 10, source, fresh=True))
    await asyncio.sleep(0)
    source.release.set()
    (_, first), (_, second) = await asyncio.gather(leader, fresh)
    assert (first, second) == (CacheStatus.MISS, CacheStatus.COALESCED) and source.calls == 1


async def test_corrupt_entry_is_a_miss_and_is_overwritten(cache: ResponseCache) -> None:
    await cache.backend.set("k", b"\x80 not json", 10)
    got, status = await cache.get_or_fetch("k", 10, Source(answer()))
    assert status is CacheStatus.MISS and got.data == {"n": 1} and cache.stats()["corrupt"] == 1
    _, status = await cache.get_or_fetch("k", 10, Source(answer()))
    assert status is CacheStatus.HIT


async def test_close_cancels_flights_in_progress(cache: ResponseCache) -> None:
    source = Source(answer())
    source.hold = True
    caller = asyncio.create_task(cache.get_or_fetch("k", 10, source))
    await source.started.wait()
    await cache.close()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert cache.stats()["in_flight"] == 0


async def test_open_cache_picks_the_backend() -> None:
    cache = open_cache("memory://", max_entries=3, negative_ttl=1)
    assert isinstance(cache.backend, MemoryBackend) and cache.backend.max_entries == 3
    shared = open_cache("redis://127.0.0.1:1/0", max_entries=3, negative_ttl=1)  # connects lazily
    assert type(shared.backend).__name__ == "RedisBackend" and shared.negative_ttl == 1
    await shared.close()
    with pytest.raises(ValueError, match="unsupported"):
        open_cache("memcached://x", max_entries=3, negative_ttl=1)
