"""The shared backend: Redis, so every worker of the hub answers from one cache.

`SET <prefix><key> <json> PX <ttl ms>` and `GET`, over one connection pool. There is no entry
bound here: the size of the cache on Redis is Redis's own `maxmemory` with an eviction policy
(`allkeys-lru` or `volatile-ttl`; every entry has a TTL, so `volatile-*` policies work too).

Redis is an optimisation, never a dependency of an answer: a failed read is a miss and a
failed write is dropped, each logged as a warning without key or value (the key is a digest
of personal identifiers, the value personal data). After a failure Redis is left alone for
`retry_after` seconds, so a Redis that hangs costs one timeout, not one per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "ehis:cache:"


class RedisBackend:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 0.5,
        retry_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        parts = urlsplit(url)
        # for logs: never the password
        self.where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
        self.prefix = prefix
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        # No retries: a failure costs at most one timeout, then `retry_after` takes over.
        # (The pool already replaces connections Redis closed before it hands them out.)
        self._redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.errors = 0

    async def get(self, key: str) -> bytes | None:
        if self._bypassed():
            return None
        try:
            return await self._redis.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed("read", exc)
            return None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0 or self._bypassed():
            return
        try:
            await self._redis.set(self.prefix + key, value, px=max(1, round(ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._failed("write", exc)

    async def close(self) -> None:
        await self._redis.aclose()

    def stats(self) -> dict[str, int]:
        return {"errors": self.errors}

    def _bypassed(self) -> bool:
        return self._clock() < self._down_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.errors += 1
        self._down_until = self._clock() + self.retry_after
        outcome = "treated as a miss" if operation == "read" else "entry dropped"
        log.warning("redis cache %s at %s failed (%s): %s; bypassing redis for %.0f s",
                    operation, self.where, type(exc).__name__, outcome, self.retry_after)
