"""The exchange log's database down or frozen (a TCP proxy before PostgreSQL that the test breaks):
every caller is answered by its deadline, the records wait in the spool, are replayed into the chain
once the database is back, one per request id, and the chain still verifies."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from urllib.parse import urlsplit

from ehis.audit.log import open_log
from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.runtime import RunningHub
from ehis.simulators import create_app
from ehis.testing import hub_in_process
from tests.audit.conftest import reset_postgres
from tests.integration.servers import TcpProxy

CALLER = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")


def fins(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return list(dict.fromkeys("".join(rng.choices(alphabet, k=7)) for _ in range(count * 2)))[:count]


async def burst(hub: RunningHub, people: list[str], timeout: float = 3.0) -> list[tuple[Reply, float]]:
    """All at once, fresh; each reply with how long it took."""
    client = BusClient(hub.transport, requester=CALLER)

    async def one(fin: str) -> tuple[Reply, float]:
        started = time.monotonic()
        reply = await client.request("din.person", {"fin": fin}, fresh=True, timeout=timeout)
        return reply, time.monotonic() - started

    return await asyncio.gather(*(one(fin) for fin in people))


async def test_database_frozen_then_down_then_back(tmp_path: Path, pki, postgres_database: str) -> None:
    await reset_postgres(postgres_database)
    real = urlsplit(postgres_database)
    async with TcpProxy((real.hostname or "127.0.0.1", real.port or 5432)) as proxy:
        proxied = real._replace(netloc=f"{real.username}@127.0.0.1:{proxy.port}").geturl()
        async with hub_in_process(tmp_path, pki, create_app(pki), database_url=proxied,
                                  log_append_timeout=0.5) as hub:
            durable = hub.parts.recorder.durable
            assert durable is not None
            before = await burst(hub, fins(10, seed=1))
            proxy.freeze()  # a hung database: connections stay open, nothing answers
            frozen = await burst(hub, fins(32, seed=2))
            assert durable.degraded
            proxy.down()  # then it goes away altogether
            down = await burst(hub, fins(32, seed=3))
            assert durable.spool is not None and durable.spool.holding > 0
            proxy.up()
            deadline = time.monotonic() + 30
            while durable.degraded or durable.spool.holding or durable.spool.segments():
                assert time.monotonic() < deadline, "the spool was not replayed"
                await asyncio.sleep(0.1)
            after = await burst(hub, fins(5, seed=4))
    replies = before + frozen + down + after
    assert all(reply.status == "ok" for reply, _ in replies), {r.error.code for r, _ in replies if r.error}
    assert all(took < 3.0 for _, took in replies)  # every reply by its caller's deadline
    async with open_log(postgres_database) as log:
        assert (await log.verify()).ok
        records = await log.search(LogQuery(service="din.person", limit=1000))
    ids = [r.request_id for r in records]
    assert sorted(ids) == sorted(reply.id for reply, _ in replies)  # one record per request, none lost
    spooled = {r.request_id for r in records if r.delivery and "spooled" in r.delivery}
    assert {reply.id for reply, _ in down} <= spooled
    assert all(r.outcome == "ok" for r in records)
