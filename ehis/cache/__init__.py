"""The response cache: stored source answers and single-flight fetches (see `response`).

`open_cache(settings.cache_url, ...)`: memory:// keeps entries in this process (bounded by
`max_entries`); redis://, rediss:// and unix:// share them between workers through Redis.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ehis.cache.base import CacheBackend, CachedAnswer, CacheStatus
from ehis.cache.memory import MemoryBackend
from ehis.cache.response import ResponseCache

__all__ = ["CacheBackend", "CacheStatus", "CachedAnswer", "MemoryBackend", "ResponseCache", "open_cache"]


def open_cache(url: str, *, max_entries: int, negative_ttl: float, key_secret: bytes | None = None,
               ca_file: Path | None = None) -> ResponseCache:
    """The cache `url` names. `max_entries` bounds memory:// only; Redis's bound is its maxmemory.
    `key_secret`: the HMAC key of key names (shared by the workers of one Redis); `ca_file`
    verifies a rediss:// server."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return ResponseCache(MemoryBackend(max_entries), negative_ttl=negative_ttl, key_secret=key_secret)
    if scheme in ("redis", "rediss", "unix"):
        from ehis.cache.redis import RedisBackend  # redis is imported only when used

        return ResponseCache(RedisBackend(url, ca_file=ca_file), negative_ttl=negative_ttl, key_secret=key_secret)
    raise ValueError(f"unsupported cache URL scheme {scheme!r}: use memory:// or redis://")
