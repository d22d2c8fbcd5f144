"""A three-node RabbitMQ cluster of the test's own (ehis.testing_cluster): `ehis broker setup` against
one node's management API, quorum queues on the three, two workers and the callers given all three
addresses. Under bounded load, one node stopped, then the queue leader killed: every caller gets a
reply or a typed error by its deadline, every reply a worker made is recorded, once per request id.

Needs rabbitmq-server on this machine (skipped without it, never when CI is set); about a minute.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ehis.bus.broker_setup import WORKER_USER, load_accounts
from ehis.testing import ehis_env, free_port, missing_service, run_ehis
from ehis.testing_cluster import Cluster, ClusterError, Node, available

from .chaos_support import CALLER, Proc, check, fins, load, report

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq]
VHOST = "ehis-cluster"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    why = available()
    if why is not None:
        missing_service(f"no RabbitMQ cluster here: {why}")
    try:
        started = Cluster.start()
    except ClusterError as exc:
        missing_service(f"the three-node cluster did not start: {exc}")
        raise
    try:
        yield started
    finally:
        started.close()


def leader(cluster: Cluster, queue: str) -> str:
    """The node that leads quorum queue `queue` now (management API)."""
    for node in cluster.nodes:
        try:
            answer = httpx.get(f"{node.management_url}/api/queues/{VHOST}/{queue}", auth=("guest", "guest"), timeout=5)
        except httpx.HTTPError:
            continue
        if answer.status_code == 200:
            return answer.json()["leader"]
    raise AssertionError(f"no node answers for queue {queue}")


def node_named(cluster: Cluster, name: str) -> Node:
    return next(n for n in cluster.nodes if n.name == name)


async def test_losing_nodes_one_at_a_time_loses_no_request(cluster: Cluster, tmp_path: Path) -> None:
    first = cluster.nodes[0]
    sim_url = f"http://127.0.0.1:{free_port()}"
    env = ehis_env(pki_dir=str(tmp_path / "pki"), data_dir=str(tmp_path / "data"), simulator_url=sim_url,
                   bus_namespace="ehis", events_listen="", admin_listen="",
                   broker_admin_url=f"http://guest:guest@127.0.0.1:{first.management_port}")
    assert (await asyncio.to_thread(run_ehis, ["pki", "init", str(tmp_path / "pki")], env)).returncode == 0
    credentials = tmp_path / "credentials.json"
    setup = await asyncio.to_thread(run_ehis, ["broker", "setup", "--broker", cluster.amqp_url("guest", "guest", VHOST),
                                               "--credentials", str(credentials)], env)
    assert setup.returncode == 0, setup.stdout + setup.stderr

    accounts = load_accounts(credentials, cluster.amqp_url("guest", "guest", VHOST).replace("guest:guest@", ""),
                             VHOST)
    sims = Proc(["simulators", "serve"], env, "Uvicorn running")
    workers = [Proc(["serve"], env | {"EHIS_BROKER_URL": accounts.url_for(WORKER_USER),
                                      "EHIS_DATA_DIR": str(tmp_path / f"w{i}")}, "worker serving") for i in (1, 2)]
    database = f"sqlite:///{tmp_path / 'log.db'}"
    for w in workers:
        w.env = w.env | {"EHIS_DATABASE_URL": database}
    try:
        await asyncio.to_thread(sims.start)
        for w in workers:
            await asyncio.to_thread(w.start)
        async with httpx.AsyncClient(auth=("guest", "guest"), timeout=10) as http:  # replicated on the three
            listed = (await http.get(f"{first.management_url}/api/queues/{VHOST}")).json()
        queue = next((q for q in listed if q["name"] == "ehis.din"), listed)
        assert isinstance(queue, dict) and queue.get("type") == "quorum", json.dumps(listed)[:800]
        assert len(queue.get("members", [])) == 3, json.dumps(queue)[:800]
        async with httpx.AsyncClient() as http:  # requests in flight when a node goes
            await http.post(f"{sim_url}/_admin/faults", json=[{"kind": "latency", "system": "din", "probability": 1.0,
                                                               "latency_ms": 50, "jitter_ms": 100}])
        started = time.monotonic()
        not_leader = next(n for n in cluster.nodes if n.name != leader(cluster, "ehis.din"))

        async def chaos() -> None:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(cluster.stop, not_leader)  # a clean stop of a follower
            await asyncio.sleep(2.0)
            await asyncio.to_thread(cluster.start_node, not_leader)
            await asyncio.sleep(1.0)
            doomed = node_named(cluster, leader(cluster, "ehis.din"))
            await asyncio.to_thread(cluster.kill, doomed)  # the queue leader, SIGKILLed
            await asyncio.sleep(3.0)
            await asyncio.to_thread(cluster.start_node, doomed)

        run, _ = await asyncio.gather(load(accounts.url_for(CALLER.subsystem), fins(2000, seed=9)), chaos())
        report("cluster: follower stopped, leader killed", run, f"({time.monotonic() - started:.1f} s)")
        await check(run, database, "cluster")
        # a request not yet accepted is sent again once the connection moved to a live node; what
        # fails is a reply lost with the dead node's connection (direct reply-to): deadline_exceeded
        assert run.success >= 0.95 and "unavailable" not in run.codes(), run.codes()
    finally:
        for p in (*workers, sims):
            p.stop()
