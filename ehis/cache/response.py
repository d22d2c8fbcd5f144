"""The response cache in front of the sources: stored answers, and one fetch per key at a time.

Single-flight: while a fetch for a key is in flight in this process, every other caller of
that key waits for it instead of asking the source again (status COALESCED). The fetch runs
in its own task, so a caller that gives up (its deadline passed, it was cancelled) stops
waiting without cancelling the fetch the others share. Coalescing is per process; workers
share fetched answers through the backend (Redis), not their flights.

Key names are keyed HMACs of the parameters (`key`), never a plain digest: the secret is the
cache's own (`ehis.cache.secret`), so a dictionary of every FIN does not reverse them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from ehis.cache.base import CacheBackend, CachedAnswer, CacheStatus

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[CachedAnswer]]


class ResponseCache:
    def __init__(self, backend: CacheBackend, *, negative_ttl: float, key_secret: bytes | None = None):
        """`key_secret`: the HMAC key of key names; workers sharing a backend must share it.
        None: a random one, right for a cache no other process reads (memory://)."""
        if negative_ttl < 0:
            raise ValueError("negative_ttl must be >= 0")
        if key_secret is not None and len(key_secret) < 16:
            raise ValueError("key_secret must be at least 16 bytes")
        self._secret = key_secret if key_secret is not None else secrets.token_bytes(32)
        self.backend = backend
        self.negative_ttl = negative_ttl  # 0 = never store a negative answer
        self._flights: dict[str, asyncio.Task[CachedAnswer]] = {}
        self.hits = 0
        self.misses = 0  # fetches started for a cached service
        self.coalesced = 0
        self.uncached = 0  # fetches for a service without a TTL (status MISS, not in `misses`)
        self.stores = 0  # answers handed to the backend (it may drop them: bound 0, Redis down)
        self.corrupt = 0  # stored entries that no longer parse (read as misses)
        self.forgotten = 0  # stored answers dropped because an event said they changed

    def key(self, service: str, params: Mapping[str, Any]) -> str:
        """`<service>:<HMAC-SHA256 of service and the canonical JSON of params, with the secret>`.

        Param order does not matter; identifiers never appear in a key name (a Redis key is
        listed by SCAN and MONITOR), and without the secret a name cannot be matched to a guessed
        identifier. The caller is deliberately not part of the key: every subsystem allowed to
        ask gets the same answer. Pass the validated, normalised params, so spellings of one
        identifier share an entry.
        """
        canonical = json.dumps([service, params], sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               default=to_jsonable_python)
        return f"{service}:{hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()}"

    async def get_or_fetch(
        self, key: str, ttl: float | None, fetch: Fetch, *, fresh: bool = False
    ) -> tuple[CachedAnswer, CacheStatus]:
        """The answer for `key`: stored, shared with a fetch in flight, or fetched now.

        `ttl` None or <= 0: the service is not cached: no answer is stored or read, but
        callers asking at the same moment still share the one fetch in flight (its answer is as
        fresh as each of them asked for).
        `fresh`: never answer from a stored entry; join a fetch already in flight (it is
        asking the source now), else fetch; the answer replaces the stored one.
        A fetch that raises stores nothing and every caller waiting for it gets that exception.
        """
        stored_service = bool(ttl and ttl > 0)
        if not stored_service:
            self.uncached += 1
        elif not fresh:
            stored = await self._read(key)
            if stored is not None:
                self.hits += 1
                return stored, CacheStatus.HIT
        flight = self._flights.get(key)  # looked up after the read: a flight may have started meanwhile
        if flight is not None:
            self.coalesced += 1
            return await asyncio.shield(flight), CacheStatus.COALESCED
        flight = asyncio.create_task(self._fetch_and_store(key, ttl or 0.0, fetch), name=f"cache-fetch {key[:40]}")
        self._flights[key] = flight
        flight.add_done_callback(lambda task: self._landed(key, task))
        if stored_service:
            self.misses += 1
        return await asyncio.shield(flight), CacheStatus.MISS

    async def forget(self, service: str, params: Mapping[str, Any]) -> None:
        """Drop the stored answer of `service` for `params` (an event said it changed at its source).
        A fetch in flight is left to land: it asked the source after the change, or moments before."""
        await self.backend.delete(self.key(service, params))
        self.forgotten += 1

    def stats(self) -> dict[str, int]:
        """Counters for metrics: this object's, and the backend's (evictions, errors...)."""
        return {
            "hits": self.hits, "misses": self.misses, "coalesced": self.coalesced,
            "uncached": self.uncached, "stores": self.stores, "corrupt": self.corrupt, "forgotten": self.forgotten,
            "in_flight": len(self._flights),
        } | self.backend.stats()

    async def close(self) -> None:
        """Cancel fetches still in flight (their waiters get CancelledError), close the backend."""
        flights = list(self._flights.values())
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*flights, return_exceptions=True)
        await self.backend.close()

    async def _read(self, key: str) -> CachedAnswer | None:
        raw = await self.backend.get(key)
        if raw is None:
            return None
        try:
            return CachedAnswer.model_validate_json(raw)
        except ValidationError:
            self.corrupt += 1  # an older format or a foreign value: fetch and overwrite it
            log.warning("cache entry for %s does not parse; treated as a miss", key.split(":", 1)[0])
            return None

    async def _fetch_and_store(self, key: str, ttl: float, fetch: Fetch) -> CachedAnswer:
        answer = await fetch()
        if answer.negative:
            ttl = min(ttl, self.negative_ttl)  # never outlives what a found record would
        if ttl > 0:
            await self.backend.set(key, answer.model_dump_json().encode(), ttl)
            self.stores += 1
        return answer

    def _landed(self, key: str, task: asyncio.Task[CachedAnswer]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when every waiter gave up
