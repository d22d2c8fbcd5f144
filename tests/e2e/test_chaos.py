"""Chaos on a real deployment: two `ehis serve` workers, `ehis simulators serve`, the exchange log in
PostgreSQL behind a TCP proxy the test breaks, callers over the real RabbitMQ (a vhost of their own).

Under bounded load (concurrency 8, 5 s deadlines) each scenario breaks one thing: workers SIGKILLed
and restarted, the log's database frozen then down, the source process killed and restarted, 20 %
mixed source faults with latency. After each: 0 hung callers, 0 `ok` without a record, every
reply a worker made recorded, one record per request id (a redelivery shows as `redelivered`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from ehis.bus.broker_setup import WORKER_USER, delete_users, delete_vhost, load_accounts
from ehis.config import Settings
from ehis.testing import ehis_env, free_port, run_ehis
from tests.audit.conftest import reset_postgres
from tests.integration.servers import TcpProxy
from tests.integration.test_breaker_faults import mixed_faults

from .chaos_support import CALLER, Proc, check, fins, load, report

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq]


class Deployment:
    """The processes of one hub, started and broken by the scenarios."""

    def __init__(self, env: dict[str, str], sim_url: str, caller_url: str, workers: list[Proc], sims: Proc,
                 proxy: TcpProxy, database_url: str) -> None:
        self.env, self.sim_url, self.caller_url = env, sim_url, caller_url
        self.workers, self.sims, self.proxy, self.database_url = workers, sims, proxy, database_url

    async def faults(self, rules: list[dict] | None) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            (await http.delete(f"{self.sim_url}/_admin/faults")).raise_for_status()
            if rules:
                (await http.post(f"{self.sim_url}/_admin/faults", json=rules)).raise_for_status()


@pytest.fixture
async def hub(tmp_path, rabbitmq_url: str, admin_url: str, postgres_database: str) -> AsyncIterator[Deployment]:
    await reset_postgres(postgres_database)
    tag = uuid.uuid4().hex[:8]
    vhost, prefix = f"chaos-{tag}", f"chaos-{tag}-"
    credentials = tmp_path / "broker-credentials.json"
    sim_url = f"http://127.0.0.1:{free_port()}"
    real = urlsplit(postgres_database)
    async with TcpProxy((real.hostname or "127.0.0.1", real.port or 5432)) as proxy:
        proxied = real._replace(netloc=f"{real.username}@127.0.0.1:{proxy.port}").geturl()
        env = ehis_env(pki_dir=str(tmp_path / "pki"), data_dir=str(tmp_path / "data"), simulator_url=sim_url,
                       bus_namespace="ehis", broker_user_prefix=prefix, events_listen="", admin_listen="",
                       database_url=proxied, log_append_timeout="1.0")
        made = await asyncio.to_thread(run_ehis, ["pki", "init", str(tmp_path / "pki")], env)
        assert made.returncode == 0, made.stderr
        setup = await asyncio.to_thread(run_ehis, ["broker", "setup", "--broker", f"{rabbitmq_url.rstrip('/')}/{vhost}",
                                                   "--credentials", str(credentials)], env)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        accounts = load_accounts(credentials, rabbitmq_url, vhost, prefix)
        sims = Proc(["simulators", "serve"], env, "Uvicorn running")
        workers = [Proc(["serve"], env | {"EHIS_BROKER_URL": accounts.url_for(WORKER_USER),
                                          "EHIS_DATA_DIR": str(tmp_path / f"worker{i}")}, "worker serving")
                   for i in (1, 2)]
        try:
            await asyncio.to_thread(sims.start)
            for w in workers:
                await asyncio.to_thread(w.start)
            yield Deployment(env, sim_url, accounts.url_for(CALLER.subsystem), workers, sims, proxy, proxied)
        finally:
            for p in (*workers, sims):
                p.stop()
            settings = Settings()
            await delete_vhost(settings.broker_admin_url, vhost)
            await delete_users(settings.broker_admin_url, accounts.users)


async def _after(seconds: float, action) -> None:
    await asyncio.sleep(seconds)
    await action()


async def test_chaos_workers_killed_database_broken_source_killed_and_faults(hub: Deployment) -> None:
    database = hub.database_url
    started = time.monotonic()

    # 1. 20 % mixed faults (503, reset, SOAP fault, garbled) and 20 % slowed by 150-450 ms
    await hub.faults(mixed_faults())
    run = await load(hub.caller_url, fins(400, seed=1))
    report("20% faults", run)
    await check(run, database, "20% faults")
    assert run.success >= 0.99, run.codes()

    # 2. a worker SIGKILLed mid-load and restarted, then the other: what it held is redelivered
    await hub.faults([{"kind": "latency", "system": "din", "probability": 1.0, "latency_ms": 100, "jitter_ms": 200}])

    async def kill_and_restart(i: int) -> None:
        hub.workers[i].kill()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(hub.workers[i].start)

    chaos = asyncio.gather(_after(1.0, lambda: kill_and_restart(0)), _after(4.0, lambda: kill_and_restart(1)))
    run, _ = await asyncio.gather(load(hub.caller_url, fins(400, seed=2)), chaos)
    records = await check(run, database, "workers killed")
    redelivered = [r for rs in records.values() for r in rs if r.delivery and "redelivered" in r.delivery]
    report("workers killed", run, f"redelivered records {len(redelivered)}")
    assert redelivered, "a worker killed with requests in hand: some must be redelivered (and recorded once)"
    assert run.success >= 0.9, run.codes()

    # 3. the log's database frozen (a hung server), then down, then back: the spools keep the records
    await hub.faults(None)

    async def database_outage() -> None:
        hub.proxy.freeze()
        await asyncio.sleep(2)
        hub.proxy.down()
        await asyncio.sleep(2)
        hub.proxy.up()

    run, _ = await asyncio.gather(load(hub.caller_url, fins(400, seed=3)), _after(0.5, database_outage))
    await check(run, database, "database frozen/down")
    spooled = [r for rs in (await check(run, database, "database")).values() for r in rs
               if r.delivery and "spooled" in r.delivery]
    report("database frozen/down", run, f"spooled records {len(spooled)}")

    # 4. the source's process killed and started again: typed errors meanwhile, recorded
    async def source_killed() -> None:
        hub.sims.kill()
        await asyncio.sleep(1.5)
        await asyncio.to_thread(hub.sims.start)

    run, _ = await asyncio.gather(load(hub.caller_url, fins(400, seed=4)), _after(0.5, source_killed))
    report("source killed", run)
    await check(run, database, "source killed")
    assert run.ok, "the source came back: requests succeed again"
    print(f"\nchaos scenarios took {time.monotonic() - started:.1f} s")
