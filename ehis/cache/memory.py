"""The in-process backend: a bounded LRU with a TTL per entry, for memory:// and one worker.

Every operation is O(1) (an OrderedDict in recency order). Expired entries are dropped lazily:
when read, or when they reach the LRU end and make room. Times come from `time.monotonic`,
so a wall-clock jump neither expires nor revives entries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryBackend:
    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic):
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries  # 0 = store nothing
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires_at, value)
        self.evictions = 0  # live entries pushed out by the bound
        self.expirations = 0  # expired entries dropped

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            self.expirations += 1
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if self.max_entries == 0 or ttl <= 0:
            return
        now = self._clock()
        self._entries[key] = (now + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            _, (expires_at, _) = self._entries.popitem(last=False)
            if now >= expires_at:
                self.expirations += 1
            else:
                self.evictions += 1

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def close(self) -> None:
        self._entries.clear()

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "evictions": self.evictions,
                "expirations": self.expirations, "errors": 0}
