"""The worker's own CPU per cached answer, without the broker: `Worker.answer` on request bytes,
in one process, exchange log off and on SQLite, at concurrency 1 and 64.

    .venv/bin/python -m bench.bench_worker_cpu [--count N]

What is left of `bench_cache_log`'s worker CPU per request once this is taken away is the bus:
aio-pika, aiormq and the event loop (the raw echo worker's own figure is that floor).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from bench.harness import CALLER, FINS
from ehis.bus.envelope import Request, Requester
from ehis.bus.worker import Worker
from ehis.security.pki import init_pki, pki_parties
from ehis.simulators.app import create_app
from ehis.testing import hub_in_process

REQUESTER = Requester(subsystem=CALLER, user="bench", purpose="benchmark")
ROUNDS = 5


async def measure(count: int, log_on: bool) -> dict[int, tuple[float, float]]:
    """Concurrency -> (min, median) CPU ms per cached answer over ROUNDS rounds."""
    tmp = Path(tempfile.mkdtemp(prefix="ehis-bench-"))
    pki = init_pki(tmp / "pki", pki_parties())
    options = {} if log_on else {"exchange_log": False}
    async with hub_in_process(tmp / "data", pki, create_app(pki), **options) as running:
        worker = Worker(running.transport, running.parts.hub.handle, running.parts.recorder)
        bodies = [Request.new("din.person", {"fin": fin}, REQUESTER, 3600).to_bytes() for fin in FINS[:50]]
        for body in bodies:  # warm the cache
            await worker.answer(body, None)

        async def run(c: int) -> float:
            async def loop(k: int) -> None:
                for i in range(k):
                    await worker.answer(bodies[i % len(bodies)], None)

            started = time.process_time()
            await asyncio.gather(*(loop(count // c) for _ in range(c)))
            return (time.process_time() - started) * 1000 / count

        result = {}
        for c in (1, 64):
            runs = sorted([await run(c) for _ in range(ROUNDS)])
            result[c] = (runs[0], runs[len(runs) // 2])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the per-request line goes nowhere here; it is measured apart
    for log_on in (False, True):
        for c, (best, median) in asyncio.run(measure(args.count, log_on)).items():
            print(f"worker.answer, cached, exchange log {'sqlite' if log_on else 'off':<6} c={c:<3} "
                  f"CPU per answer {best:.3f} ms (median of {ROUNDS}: {median:.3f} ms)")


if __name__ == "__main__":
    main()
