"""The response cache on a real Redis: shared between workers, TTL, degraded when Redis is down."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from ehis.cache import CachedAnswer, CacheStatus, ResponseCache
from ehis.cache.redis import RedisBackend
from ehis.errors import NotFound
from ehis.evidence import Evidence

pytestmark = pytest.mark.redis

FIN = "5ABC123"


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never FLUSHDB/FLUSHALL)."""
    value = f"ehis:test:{uuid.uuid4().hex}:"
    yield value
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{value}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


class Source:
    def __init__(self, answer: CachedAnswer) -> None:
        self.answer = answer
        self.calls = 0

    async def __call__(self) -> CachedAnswer:
        self.calls += 1
        return self.answer


SECRET = b"the workers of one Redis share this"


def worker(url: str, prefix: str, negative_ttl: float = 30) -> ResponseCache:
    return ResponseCache(RedisBackend(url, prefix=prefix), negative_ttl=negative_ttl, key_secret=SECRET)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_second_worker_hits_what_the_first_stored(redis_url: str, prefix: str, raw: Redis) -> None:
    first, second = worker(redis_url, prefix), worker(redis_url, prefix)
    try:
        key = first.key("din.person", {"fin": FIN})
        assert second.key("din.person", {"fin": FIN}) == key
        evidence = Evidence(signer="CN=din", digest="00" * 32, message_id="m-1", fetched_at=datetime.now(UTC))
        stored = CachedAnswer(data={"fin": FIN, "name": "Əli"}, evidence=evidence)
        source = Source(stored)
        got, status = await first.get_or_fetch(key, 60, source)
        assert status is CacheStatus.MISS
        got, status = await second.get_or_fetch(key, 60, source)
        assert status is CacheStatus.HIT and got == stored and source.calls == 1

        names = [name.decode() async for name in raw.scan_iter(match=f"{prefix}*")]
        assert names == [prefix + key] and FIN not in names[0]
        value = await raw.get(prefix + key)
        assert json.loads(value)["data"] == {"fin": FIN, "name": "Əli"}  # JSON, not pickle
        assert 55_000 < await raw.pttl(prefix + key) <= 60_000
    finally:
        await first.close()
        await second.close()


async def test_entries_expire_on_redis(redis_url: str, prefix: str) -> None:
    cache = worker(redis_url, prefix)
    try:
        source = Source(CachedAnswer(data={"n": 1}))
        await cache.get_or_fetch("k", 0.2, source)
        _, status = await cache.get_or_fetch("k", 0.2, source)
        assert status is CacheStatus.HIT
        await asyncio.sleep(0.3)
        _, status = await cache.get_or_fetch("k", 0.2, source)
        assert status is CacheStatus.MISS and source.calls == 2
    finally:
        await cache.close()


async def test_negative_entry_uses_negative_ttl(redis_url: str, prefix: str, raw: Redis) -> None:
    cache = worker(redis_url, prefix, negative_ttl=0.2)
    try:
        source = Source(CachedAnswer.from_error(NotFound("no such person", source="din")))
        await cache.get_or_fetch("k", 60, source)
        got, status = await cache.get_or_fetch("k", 60, source)
        assert status is CacheStatus.HIT and isinstance(got.exception(), NotFound)
        assert 0 < await raw.pttl(prefix + "k") <= 200
        await asyncio.sleep(0.3)
        _, status = await cache.get_or_fetch("k", 60, source)
        assert status is CacheStatus.MISS
    finally:
        await cache.close()


async def test_unreachable_redis_degrades_to_fetching(caplog: pytest.LogCaptureFixture) -> None:
    cache = worker(f"redis://127.0.0.1:{free_port()}/15", "ehis:test:")
    try:
        source = Source(CachedAnswer(data={"fin": FIN}))
        key = cache.key("din.person", {"fin": FIN})
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="ehis.cache"):
            for _ in range(3):
                got, status = await cache.get_or_fetch(key, 60, source)
                assert status is CacheStatus.MISS and got.data == {"fin": FIN}
        assert source.calls == 3
        assert time.monotonic() - started < 2  # no retry back-off held the requests
        assert cache.stats()["errors"] >= 1
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings and len(warnings) <= 2  # logged once, then bypassed; not once per request
        assert all(FIN not in w and key.split(":")[1] not in w for w in warnings)
    finally:
        await cache.close()


async def test_redis_coming_back_is_used_again(redis_url: str, prefix: str) -> None:
    now = [0.0]
    backend = RedisBackend(redis_url, prefix=prefix, retry_after=5, clock=lambda: now[0])
    cache = ResponseCache(backend, negative_ttl=30)
    try:
        backend._failed("read", ConnectionError("simulated"))
        source = Source(CachedAnswer(data={"n": 1}))
        await cache.get_or_fetch("k", 60, source)  # bypassed: not stored
        _, status = await cache.get_or_fetch("k", 60, source)
        assert status is CacheStatus.MISS
        now[0] = 5.0
        await cache.get_or_fetch("k", 60, source)
        _, status = await cache.get_or_fetch("k", 60, source)
        assert status is CacheStatus.HIT and source.calls == 3
    finally:
        await cache.close()


async def test_hanging_redis_costs_one_timeout_not_one_per_request() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        cache = ResponseCache(RedisBackend(f"redis://127.0.0.1:{port}/15", timeout=0.2), negative_ttl=30)
        try:
            source = Source(CachedAnswer(data={"n": 1}))
            started = time.monotonic()
            for _ in range(5):
                _, status = await cache.get_or_fetch("k", 60, source)
                assert status is CacheStatus.MISS
            elapsed = time.monotonic() - started
            assert source.calls == 5 and cache.stats()["errors"] == 1
            assert elapsed < 0.35  # one 0.2 s timeout, no retry, then bypassed
        finally:
            await cache.close()
