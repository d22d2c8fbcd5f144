"""The shared backend: Redis, so every worker of the hub answers from one cache.

`SET <prefix><key> <json> PX <ttl ms>` and `GET`, over one connection pool. There is no entry
bound here: the size of the cache on Redis is Redis's own `maxmemory` with an eviction policy
(`allkeys-lru` or `volatile-ttl`; every entry has a TTL, so `volatile-*` policies work too).

Redis is an optimisation, never a dependency of an answer: a failed read is a miss and a
failed write is dropped, each logged as a warning without key or value (the key is a digest
of personal identifiers, the value personal data). After a failure Redis is left alone for
`retry_after` seconds, so a Redis that hangs costs one timeout, not one per request.

`redis://:password@host:6379/0` (or `user:password@`) authenticates; `rediss://` speaks TLS and
always verifies Redis's certificate and host name, against `ca_file` (`tls_ca_file`) unless the
URL names `ssl_ca_certs`; a URL asking not to verify is refused.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
        ca_file: Path | str | None = None,
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
            **tls_options(url, ca_file),
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

    async def delete(self, key: str) -> None:
        if self._bypassed():
            return
        try:
            await self._redis.delete(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed("delete", exc)

    async def close(self) -> None:
        await self._redis.aclose()

    def stats(self) -> dict[str, int]:
        return {"errors": self.errors}

    def _bypassed(self) -> bool:
        return self._clock() < self._down_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.errors += 1
        self._down_until = self._clock() + self.retry_after
        outcome = {"read": "treated as a miss", "write": "entry dropped"}.get(operation, "entry left to expire")
        log.warning("redis cache %s at %s failed (%s): %s; bypassing redis for %.0f s",
                    operation, self.where, type(exc).__name__, outcome, self.retry_after)


FALSE_STRINGS = ("0", "F", "FALSE", "N", "NO")  # what redis-py reads as false in a URL


def tls_options(url: str, ca_file: Path | str | None) -> dict[str, Any]:
    """redis-py's TLS arguments for a rediss:// URL (none for redis:// and unix://): verified,
    TLS 1.2 at least. The URL's own parameters win over arguments in redis-py, so one that would
    weaken verification is refused here."""
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return {}
    query = dict(parse_qsl(parts.query))
    weakening = [name for name, value in query.items()
                 if (name == "ssl_cert_reqs" and value.lower() != "required")
                 or (name == "ssl_check_hostname" and value.upper() in FALSE_STRINGS)]
    if weakening:
        raise ValueError(f"cache_url: {weakening[0]} would not verify Redis's certificate; rediss:// always verifies")
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True,
                               "ssl_min_version": ssl.TLSVersion.TLSv1_2}
    if ca_file is not None and "ssl_ca_certs" not in query:
        options["ssl_ca_certs"] = str(ca_file)
    return options
