"""Failures and recovery: success rates and recovery times, from one run on this machine.

    .venv/bin/python -m bench.bench_failures [--runs 5] [--count 640]

1. breaker: 20 % mixed faults (503, reset, SOAP fault, garbled) and 20 % of answers slowed by
   150-450 ms at concurrency 32, several runs, each with a fresh hub: success rate per run and
   whether the breaker opened
2. outage: the source down for 5 s (a 503 rule, then removed) under load at concurrency 8: how long
   callers saw failures, and how long after the source's return
3. log outage (PostgreSQL behind a TCP proxy, needs EHIS_TEST_POSTGRES_URL or the local one): the
   database frozen then down under bursts of 32, then back: replies by their deadline, seconds until
   the spool is replayed, records per request id

The hub runs in this process (memory:// bus), the simulators under uvicorn on a real socket.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ehis.security.pki import init_pki, pki_parties
from ehis.simulators import create_app
from ehis.simulators.faults import parse_rules
from ehis.testing import free_port, hub_in_process
from tests.audit.test_spool_outage import burst
from tests.integration.servers import TcpProxy, serving
from tests.integration.test_breaker_faults import (
    fins,
    load,
    mixed_faults,
    source_outage,
)


async def breaker_runs(base: Path, pki, runs: int, count: int) -> None:
    print(f"1. breaker: 20 % mixed faults + 20 % latency 150-450 ms, concurrency 32, {count} requests a run")
    rates = []
    for run in range(runs):
        app = create_app(pki, rng=random.Random(100 + run))
        app.state.faults.add(parse_rules(mixed_faults()))
        port = free_port()
        with serving(app, port):
            async with hub_in_process(base / f"b{run}", pki, transport=httpx.AsyncHTTPTransport(),
                                      simulator_url=f"http://127.0.0.1:{port}") as hub:
                started = time.monotonic()
                replies = [r for _, r in await load(hub, fins(count, seed=200 + run))]
                took = time.monotonic() - started
                await hub.parts.outages.flush()
                opened = bool(await hub.parts.outages.list("din"))
        ok = sum(r.status == "ok" for r in replies) / len(replies)
        rates.append(ok)
        print(f"   run {run + 1}: success {ok:.2%} in {took:.1f} s, breaker opened: {opened}")
    print(f"   worst {min(rates):.2%}, mean {sum(rates) / len(rates):.2%}")


async def outage(base: Path, pki) -> None:
    replies, down, up = await source_outage(base / "outage", pki, seed=7)
    failed = [at for at, r in replies if r.error is not None]
    print("2. source down for 5 s under load (concurrency 8)")
    print(f"   failures for {max(failed) - down:.2f} s; the last {max(failed) - up:.2f} s after the source returned"
          f" ({len(failed)} failed of {len(replies)})")


async def log_outage(base: Path, pki) -> None:
    from ehis.audit.log import open_log
    from ehis.audit.model import LogQuery
    from tests.audit.conftest import _admin, reset_postgres

    url = os.environ.get("EHIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ehis_bench_{uuid.uuid4().hex[:10]}"
    try:
        await _admin(url, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001
        print(f"3. log outage: skipped, PostgreSQL does not answer ({type(exc).__name__})")
        return
    db = urlsplit(url)._replace(path=f"/{name}")
    try:
        await reset_postgres(db.geturl())
        async with TcpProxy((db.hostname or "127.0.0.1", db.port or 5432)) as proxy:
            proxied = db._replace(netloc=f"{db.username}@127.0.0.1:{proxy.port}").geturl()
            async with hub_in_process(base / "log", pki, create_app(pki), database_url=proxied,
                                      log_append_timeout=0.5) as hub:
                durable = hub.parts.recorder.durable
                assert durable is not None and durable.spool is not None
                replies = await burst(hub, fins(32, seed=1))
                proxy.freeze()
                replies += await burst(hub, fins(32, seed=2))
                proxy.down()
                replies += await burst(hub, fins(32, seed=3))
                spooled = durable.spooled
                proxy.up()
                back = time.monotonic()
                while durable.degraded or durable.spool.holding or durable.spool.segments():
                    await asyncio.sleep(0.05)
                replayed_in = time.monotonic() - back
        async with open_log(db.geturl()) as log:
            ok = (await log.verify()).ok
            ids = [r.request_id for r in await log.search(LogQuery(service="din.person", limit=1000))]
    finally:
        await _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    late = sum(took >= 3.0 for _, took in replies)
    print("3. exchange log database frozen, then down, then back (bursts of 32, 3 s deadlines)")
    print(f"   replies ok {sum(r.status == 'ok' for r, _ in replies)}/{len(replies)}, past the deadline {late},"
          f" slowest {max(t for _, t in replies):.2f} s; {spooled} records spooled, replayed {replayed_in:.2f} s"
          f" after the database returned; records {len(ids)} for {len(set(ids))} request ids; chain ok: {ok}")


async def main(runs: int, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ehis-bench-failures-") as tmp:
        base = Path(tmp)
        pki = init_pki(base / "pki", pki_parties())
        await breaker_runs(base, pki, runs, count)
        await outage(base, pki)
        await log_outage(base, pki)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=640)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.count))
