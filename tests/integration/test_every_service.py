"""Every service of the statute through the whole hub, on the embedded bus and on RabbitMQ: a
caller the policy allows gets the verified, mapped answer, and the exchange log records it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from ehis.audit.model import LogQuery
from ehis.bus.broker_setup import (
    WORKER_USER,
    BrokerAccounts,
    delete_users,
    delete_vhost,
    load_accounts,
    setup_broker,
)
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.bus.transport import Transport, open_transport
from ehis.config import Settings
from ehis.policy import DEFAULT_ACCESS, AccessPolicy
from ehis.runtime import RunningHub, embedded_hub
from ehis.simulators import create_app
from ehis.sources import services

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one hub per bus for the module's requests
POLICY = AccessPolicy(DEFAULT_ACCESS)
SERVICES = sorted(services())


def caller_of(name: str) -> str:
    return next(c for c in DEFAULT_ACCESS if POLICY.allows(c, name))


class Bus:
    """The hub on one bus, and a client per calling subsystem (on RabbitMQ each logs in as itself)."""

    def __init__(self, hub: RunningHub, accounts: BrokerAccounts | None, namespace: str):
        self.hub, self.accounts, self.namespace = hub, accounts, namespace
        self._transports: dict[str, Transport] = {}

    async def client(self, subsystem: str) -> BusClient:
        requester = Requester(subsystem=subsystem, user="AZ1", purpose="check")
        if self.accounts is None:
            return BusClient(self.hub.transport, requester=requester)
        if subsystem not in self._transports:
            transport = open_transport(self.accounts.url_for(subsystem), namespace=self.namespace)
            await transport.connect()
            self._transports[subsystem] = transport
        return BusClient(self._transports[subsystem], requester=requester)

    async def close(self) -> None:
        for transport in self._transports.values():
            await transport.close()


@asynccontextmanager
async def running_bus(kind: str, pki, data_dir: Path, **settings: object) -> AsyncIterator[Bus]:
    """The hub on memory://, or on RabbitMQ with a vhost and broker users of its own."""
    tag = uuid.uuid4().hex[:8]
    namespace, accounts = f"every-{tag}", None
    if kind == "amqp":
        amqp = os.environ.get("EHIS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
        admin = Settings().broker_admin_url
        vhost, prefix = f"every-{tag}", f"every-{tag}-"
        await setup_broker(admin, amqp, vhost=vhost, namespace=namespace, subsystems=list(DEFAULT_ACCESS),
                           credentials=data_dir / "broker.json", user_prefix=prefix)
        accounts = load_accounts(data_dir / "broker.json", amqp, vhost, prefix)
        settings |= {"broker_url": accounts.url_for(WORKER_USER), "broker_user_prefix": prefix}
    config = Settings(**{"data_dir": data_dir, "pki_dir": pki.directory, "broker_url": f"memory://{tag}",
                         "bus_namespace": namespace, "simulator_url": "http://simulators.test",
                         "admin_listen": "", "events_listen": "", **settings})  # never a running hub's ports
    try:
        async with embedded_hub(config, http_transport=httpx.ASGITransport(app=create_app(pki))) as running:
            bus = Bus(running, accounts, namespace)
            try:
                yield bus
            finally:
                await bus.close()
    finally:
        if accounts is not None:
            await delete_vhost(Settings().broker_admin_url, accounts.vhost)
            await delete_users(Settings().broker_admin_url, accounts.users)


@pytest.fixture(scope="module", params=["memory", "amqp"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "amqp":
        request.getfixturevalue("rabbitmq_url")  # no broker: skipped on a laptop, failed in CI
    return request.param


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bus(kind: str, pki, tmp_path_factory) -> AsyncIterator[Bus]:
    async with running_bus(kind, pki, tmp_path_factory.mktemp("every")) as running:
        yield running


@pytest.mark.parametrize("name", SERVICES)
async def test_every_service_answers_verified_and_mapped(bus: Bus, name: str) -> None:
    spec = services()[name]
    reply = await (await bus.client(caller_of(name))).request(name, dict(spec.example), timeout=10)
    assert reply.status == "ok", reply.error
    spec.model.model_validate(reply.data)  # the canonical model, whole
    if spec.handler is None:  # one source answered: its signed answer is the evidence
        assert reply.meta.signed_by.startswith(f"CN={spec.system},") and len(reply.meta.evidence) == 64
    records = [r for r in await bus.hub.parts.log.search(LogQuery(service=name, limit=50)) if r.request_id == reply.id]
    assert len(records) == 1 and records[0].outcome == "ok"
    assert records[0].subject == (spec.subject_of(spec.params.model_validate(spec.example)) if spec.subject else None)


@pytest.mark.rabbitmq
async def test_a_service_no_worker_serves_is_not_served_on_rabbitmq(rabbitmq_url: str, pki, tmp_path: Path) -> None:
    """A worker serving din only: a request for another source's service reaches its catch-all
    queue (the alternate exchange) and is answered `not_served`, not left to expire."""
    other = next(n for n in SERVICES if not n.startswith("din."))
    async with running_bus("amqp", pki, tmp_path, serve_sources=["din"]) as partial:
        reply = await (await partial.client(caller_of(other))).request(other, dict(services()[other].example),
                                                                         timeout=5)
        served = await (await partial.client("pensiya")).request("din.person", {"fin": "5GXM4DZ"})
    assert reply.error is not None and reply.error.code == "not_served" and not reply.error.retryable
    assert served.status == "ok", served.error
