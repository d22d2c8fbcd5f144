"""Events on the real broker, as `ehis broker setup` lays them out: each subsystem's queue bound
to what its policy grants, consumed only by that subsystem, published only by the worker;
confirmed publishing, explicit acks, redelivery counted, dead letters after the limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest

from ehis.bus.amqp_events import AmqpEventBus
from ehis.bus.broker_setup import (
    BrokerAccounts,
    delete_users,
    delete_vhost,
    load_accounts,
    setup_broker,
)
from ehis.bus.events import EVENT_DELIVERY_LIMIT, event_names
from ehis.errors import Forbidden, SourceUnavailable
from ehis.events.models import Event
from tests.integration.events_helpers import take_from

pytestmark = pytest.mark.rabbitmq


def event(n: int, key: str = "edliyye.death") -> Event:
    now = datetime.now(UTC)
    return Event(id=f"edliyye:ev-{n}", key=key, source_event_id=f"ev-{n}", subject="5GXM4DZ", occurred_at=now,
                 received_at=now, via="push", signed_by="CN=edliyye", evidence="0" * 64, data={"n": n})


class Deployment:
    def __init__(self, accounts: BrokerAccounts, namespace: str, tag: str) -> None:
        self.accounts, self.namespace, self.tag = accounts, namespace, tag

    def name(self, subsystem: str) -> str:
        return f"t-{self.tag}-{subsystem}"

    def bus(self, user: str) -> AmqpEventBus:
        return AmqpEventBus(self.accounts.url_for(user), namespace=self.namespace)


@pytest.fixture
async def deployment(rabbitmq_url: str, admin_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    tag = uuid.uuid4().hex[:8]
    vhost, namespace, worker = f"ehis-test-ev-{tag}", f"ns-{tag}", f"t-{tag}-worker"
    pension, vemtas, employment = (f"t-{tag}-{s}" for s in ("pensiya", "vemtas", "emek"))
    receivers = {pension: ["edliyye.death"], vemtas: ["edliyye.*", "din.address-changed"], employment: []}
    credentials = tmp_path / "broker-credentials.json"
    report = await setup_broker(admin_url, rabbitmq_url, vhost=vhost, namespace=namespace,
                                subsystems=[pension, vemtas, employment], credentials=credentials,
                                event_receivers=receivers, worker_user=worker)
    assert f"{namespace}.events.{pension}" in report.queues and f"{namespace}.events.{employment}" not in report.queues
    d = Deployment(load_accounts(credentials, rabbitmq_url, vhost), namespace, tag)
    d.setup = lambda r: setup_broker(admin_url, rabbitmq_url, vhost=vhost, namespace=namespace,  # type: ignore[attr-defined]
                                     subsystems=[pension, vemtas, employment], credentials=credentials,
                                     event_receivers=r, worker_user=worker)
    yield d
    await delete_vhost(admin_url, vhost)
    await delete_users(admin_url, [pension, vemtas, employment, worker])


async def _take(bus: AmqpEventBus, subsystem: str, count: int, *, ack: bool = True, within: float = 5.0):
    return await take_from(bus.subscribe(subsystem), count, ack=ack, within=within)


async def test_each_subsystem_gets_what_its_bindings_grant(deployment: Deployment) -> None:
    d = deployment
    async with d.bus(d.name("worker")) as worker, d.bus(d.name("pensiya")) as pension, \
            d.bus(d.name("vemtas")) as vemtas:
        for n, key in enumerate(["edliyye.death", "edliyye.birth", "din.address-changed", "dmx.permit-issued"]):
            await worker.publish(event(n, key))
        got = await _take(pension, d.name("pensiya"), 1)
        assert [r.event.key for r in got] == ["edliyye.death"]
        assert got[0].event.data == {"n": 0} and got[0].deliveries == 1
        got = await _take(vemtas, d.name("vemtas"), 3)
        assert [r.event.key for r in got] == ["edliyye.death", "edliyye.birth", "din.address-changed"]
        assert await pension.depth(d.name("pensiya")) == 0


async def test_a_subsystem_may_consume_only_its_own_queue_and_never_publish(deployment: Deployment) -> None:
    d = deployment
    async with d.bus(d.name("vemtas")) as vemtas:
        with pytest.raises(Forbidden, match="reads only its own queue"):
            await _take(vemtas, d.name("pensiya"), 1, within=2)
        with pytest.raises(SourceUnavailable):
            await vemtas.publish(event(9))
    async with d.bus(d.name("emek")) as employment:
        with pytest.raises(SourceUnavailable, match="no event queue"):
            await _take(employment, d.name("emek"), 1, within=2)


async def test_the_published_message_names_the_worker_as_publisher(deployment: Deployment) -> None:
    d = deployment
    async with d.bus(d.name("worker")) as worker:
        await worker.publish(event(1))
    connection = await aio_pika.connect(d.accounts.url_for(d.name("pensiya")))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(event_names(d.namespace, d.name("pensiya"))["queue"], passive=True)
        message = await queue.get(timeout=5)
        assert message.user_id == d.name("worker") and message.message_id == "edliyye:ev-1"
        assert message.type == "edliyye.death"
        await message.ack()


async def test_rejected_events_come_back_counted_then_dead_letter(deployment: Deployment) -> None:
    d = deployment
    async with d.bus(d.name("worker")) as worker, d.bus(d.name("pensiya")) as pension:
        await worker.publish(event(1))
        async with asyncio.timeout(10), aclosing(pension.subscribe(d.name("pensiya"))) as stream:
            for attempt in range(1, EVENT_DELIVERY_LIMIT + 2):  # the limit counts returns: one more delivery
                received = await anext(stream)
                assert received.deliveries == attempt
                await received.reject()
        with pytest.raises(TimeoutError):
            await _take(pension, d.name("pensiya"), 1, within=1.0)
    admin = await aio_pika.connect(d.accounts.url_for(d.name("worker")))
    async with admin:
        dead = await (await admin.channel()).declare_queue(event_names(d.namespace)["dead"], passive=True)
        assert dead.declaration_result.message_count == 1


async def test_an_event_a_subscriber_held_when_it_went_away_comes_back(deployment: Deployment) -> None:
    d = deployment
    async with d.bus(d.name("worker")) as worker, d.bus(d.name("pensiya")) as pension:
        await worker.publish(event(1))
        async with asyncio.timeout(5), aclosing(pension.subscribe(d.name("pensiya"), prefetch=1)) as stream:
            first = await anext(stream)  # and never settled: the subscriber crashed
        (again,) = await _take(pension, d.name("pensiya"), 1)
        assert again.event.id == first.event.id and again.deliveries == 2


async def test_setup_again_removes_the_bindings_the_policy_no_longer_grants(deployment: Deployment) -> None:
    d = deployment
    report = await d.setup({d.name("pensiya"): [], d.name("vemtas"): ["edliyye.*"]})  # type: ignore[attr-defined]
    queue = f"{d.namespace}.events"
    assert report.unbound == [f"{queue}.{d.name('pensiya')} edliyye.death", f"{queue}.{d.name('vemtas')} din.address-changed"]
    async with d.bus(d.name("worker")) as worker, d.bus(d.name("vemtas")) as vemtas:
        await worker.publish(event(1, "din.address-changed"))
        await worker.publish(event(2, "edliyye.death"))
        got = await _take(vemtas, d.name("vemtas"), 1)
        assert got[0].event.key == "edliyye.death"
        assert await vemtas.depth(d.name("vemtas")) == 0
