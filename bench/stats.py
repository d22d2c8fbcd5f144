"""Closed-loop load: N concurrent callers for a fixed count, with throughput and latency."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    name: str
    concurrency: int
    count: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.count / self.seconds

    def row(self) -> str:
        return (f"{self.name:<34} c={self.concurrency:<3} n={self.count:<5} {self.rps:>8.0f} req/s  "
                f"p50 {self.p50_ms:>7.2f} ms  p99 {self.p99_ms:>7.2f} ms  errors {self.errors}")


async def load(name: str, call: Callable[[int], Awaitable[bool]], concurrency: int, count: int,
               warmup: int = 50) -> Result:
    """Run `call(i)` `count` times from `concurrency` loops; `call` returns True on success."""
    for i in range(warmup):
        await call(-i - 1)
    latencies: list[float] = []
    errors = 0
    next_i = 0

    async def loop() -> None:
        nonlocal next_i, errors
        while next_i < count:
            i = next_i
            next_i += 1
            t = time.perf_counter()
            ok = await call(i)
            latencies.append((time.perf_counter() - t) * 1000)
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return Result(name, concurrency, count, errors, seconds, statistics.median(latencies), q[98])
