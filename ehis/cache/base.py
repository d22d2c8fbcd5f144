"""What the cache stores and the small interface a storage backend implements.

Entries are JSON bytes (pydantic `model_dump_json`), in memory as on Redis: never pickle,
whose loads would run code whoever can write to Redis chose, and one format for both backends
so nothing passes a memory:// test that would break on redis://.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from ehis.errors import EhisError, error_for
from ehis.evidence import Evidence


class CacheStatus(StrEnum):
    """How an answer was obtained; the values are those of `Meta.cache`."""

    HIT = "hit"  # from a stored entry
    MISS = "miss"  # this caller's fetch asked the source
    COALESCED = "coalesced"  # shared another caller's fetch already in flight


class CachedAnswer(BaseModel):
    """One answer of a source with its evidence, as the cache keeps it: data, or a negative
    (not_found) entry, each with the proof of the signed answer it came from.

    One object is shared by every caller of a coalesced fetch: treat it as read-only. (A hit
    decodes its own copy from the stored JSON.)
    """

    model_config = ConfigDict(extra="ignore")  # an entry written by a newer hub still reads

    data: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # {"code", "message", "source"}; only not_found is cached
    evidence: Evidence | None = None

    @property
    def negative(self) -> bool:
        return self.error is not None

    @classmethod
    def from_error(cls, exc: EhisError) -> CachedAnswer:
        """A negative entry for `exc` (a signed NotFound), keeping its evidence."""
        return cls(error={"code": exc.code.value, "message": exc.message, "source": exc.source},
                   evidence=exc.evidence)

    def exception(self) -> EhisError | None:
        """The typed error a negative entry stands for, to raise in the caller; None for data."""
        if self.error is None:
            return None
        return error_for(str(self.error.get("code")), str(self.error.get("message", "")),
                         source=self.error.get("source"), evidence=self.evidence)


class CacheBackend(Protocol):
    """Key -> JSON bytes with a TTL. Backends never raise for their own storage failures:
    a cache that cannot read answers None (a miss), one that cannot write drops the entry."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...

    def stats(self) -> dict[str, int]: ...
