"""`ehis broker setup` against the real broker: users, least-privilege permissions, topology.

Broker users are broker-wide, so every test makes its own user names (and vhost, namespace,
credentials file) and deletes them after: a developer's real `emek-muqavilesi` is never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import stat
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aio_pika
import httpx
import pytest
from aio_pika.exceptions import ChannelPreconditionFailed, ProbableAuthenticationError
from aiormq.exceptions import ChannelAccessRefused

from ehis.bus import broker_commands
from ehis.bus.amqp import DELIVERY_LIMIT
from ehis.bus.broker_commands import register
from ehis.bus.broker_setup import (
    BrokerAccounts,
    SetupReport,
    delete_users,
    delete_vhost,
    load_accounts,
    setup_broker,
    subsystem_permissions,
    vhost_of,
    worker_permissions,
    write_credentials,
)
from ehis.bus.envelope import Meta, Reply
from ehis.bus.transport import UNROUTED, Delivery, Transport, open_transport
from ehis.config import Settings

# -- without a broker ---------------------------------------------------------------------------


def test_url_for_quotes_user_password_and_vhost() -> None:
    accounts = BrokerAccounts({"emek": "p/w:@"}, "amqps://guest:guest@mq.example:5671/?heartbeat=30", "/")
    assert accounts.url_for("emek") == "amqps://emek:p%2Fw%3A%40@mq.example:5671/%2F?heartbeat=30"
    assert accounts.template("<subsystem>") == "amqps://<subsystem>:<password>@mq.example:5671/%2F?heartbeat=30"
    assert "p/w" not in repr(accounts)
    with pytest.raises(KeyError, match="ehis broker setup"):
        accounts.url_for("nobody")


def test_vhost_of() -> None:
    assert vhost_of("amqp://u:p@h:5672/") is None
    assert vhost_of("amqp://h") is None
    assert vhost_of("amqp://u:p@h/ehis") == "ehis"
    assert vhost_of("amqp://h/%2F") == "/"


def test_credentials_file_is_replaced_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "creds.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    write_credentials(path, {"b": "2", "a": "1"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"a": "1", "b": "2"}
    assert load_accounts(path, "amqp://h/", "v").users == ["a", "b"]
    assert [p.name for p in path.parent.iterdir()] == ["creds.json"]  # no temporary file left


def test_permission_regexes_escape_the_namespace() -> None:
    assert subsystem_permissions("a.b", "pensiya").write == r"^a\.b\.requests$"
    assert subsystem_permissions("a.b", "pensiya").read == r"^a\.b\.events\.pensiya$"
    worker = worker_permissions("ns", ["din", "vergiler"])
    events = r"ns\.events(\.[a-z0-9-]+)?"
    assert worker.configure == rf"^(ns\.(requests|dlx|dead|din|vergiler)|{events})$"
    assert worker.write == rf"^(amq\.default|ns\.(dlx|dead|din|vergiler)|{events})$"
    assert worker.read == rf"^(ns\.(requests|dlx|din|vergiler)|{events})$"


# -- against RabbitMQ ---------------------------------------------------------------------------


def _admin(admin_url: str, method: str, *segments: str) -> Any:
    parts = urlsplit(admin_url)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}/api/"
    response = httpx.request(
        method, base + "/".join(quote(s, safe="") for s in segments),
        auth=(parts.username or "guest", parts.password or "guest"), timeout=10,
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json() if response.content else None


@dataclass
class Broker:
    """One test's own vhost, namespace, users and credentials file."""

    admin_url: str
    amqp_url: str
    vhost: str
    namespace: str
    subsystems: list[str]
    worker: str
    credentials: Path

    async def setup(self, subsystems: list[str] | None = None, **options: bool) -> SetupReport:
        return await setup_broker(
            self.admin_url, self.amqp_url, vhost=self.vhost, namespace=self.namespace,
            subsystems=self.subsystems if subsystems is None else subsystems,
            credentials=self.credentials, worker_user=self.worker, **options,
        )

    @property
    def accounts(self) -> BrokerAccounts:
        return load_accounts(self.credentials, self.amqp_url, self.vhost)

    def passwords(self) -> dict[str, str]:
        return json.loads(self.credentials.read_text())


@pytest.fixture
async def broker(rabbitmq_url: str, admin_url: str, tmp_path: Path) -> AsyncIterator[Broker]:
    tag = uuid.uuid4().hex[:10]
    subsystems = [f"t-{tag}-emek", f"t-{tag}-vemtas", f"t-{tag}-tseras"]
    b = Broker(admin_url, rabbitmq_url, f"ehis-test-{tag}", f"ns-{tag}", subsystems, f"t-{tag}-worker",
               tmp_path / "broker-credentials.json")
    yield b
    await delete_vhost(admin_url, b.vhost)
    await delete_users(admin_url, [*subsystems, b.worker])


@pytest.fixture
async def ready(broker: Broker) -> Broker:
    await broker.setup()
    return broker


async def _echo_identity(delivery: Delivery) -> bytes:
    """A worker handler answering with the identity the broker vouched for."""
    request_id = json.loads(delivery.body)["id"]
    return Reply.ok(request_id, {"broker_user": delivery.broker_user}, Meta(system="din")).to_bytes()


async def _call(transport: Transport, service: str = "din.person") -> Reply:
    request_id = uuid.uuid4().hex
    body = json.dumps({"id": request_id}).encode()
    return await transport.send(service, body, correlation_id=request_id, timeout=5.0)


@pytest.mark.rabbitmq
class TestSetup:
    async def test_creates_vhost_users_permissions_and_queues(self, broker: Broker) -> None:
        report = await broker.setup()
        users = [*broker.subsystems, broker.worker]
        assert report.vhost_created
        assert report.created == sorted(users)
        assert report.rotated == report.reset == report.stale == []
        assert _admin(broker.admin_url, "GET", "vhosts", broker.vhost) is not None
        for user in users:
            assert _admin(broker.admin_url, "GET", "users", user)["tags"] in ([], "")
            grant = _admin(broker.admin_url, "GET", "permissions", broker.vhost, user)
            expected = report.worker_permissions if user == broker.worker else report.subsystem_permissions[user]
            assert (grant["configure"], grant["write"], grant["read"]) == (expected.configure, expected.write, expected.read)
        for user, grant in report.subsystem_permissions.items():
            assert grant.configure == "^$" and grant.read == "^" + broker.namespace + r"\.events\." + user + "$"

        ns = broker.namespace
        assert report.queues == [f"{ns}.dead", f"{ns}.events.dead", f"{ns}.unrouted"]  # no event receiver here
        unrouted = _admin(broker.admin_url, "GET", "queues", broker.vhost, f"{ns}.unrouted")
        assert unrouted["type"] == "quorum"
        assert unrouted["arguments"]["x-delivery-limit"] == DELIVERY_LIMIT
        assert unrouted["arguments"]["x-dead-letter-exchange"] == f"{ns}.dlx"
        requests = _admin(broker.admin_url, "GET", "exchanges", broker.vhost, f"{ns}.requests")
        assert requests["arguments"]["alternate-exchange"] == f"{ns}.unrouted"
        bindings = _admin(broker.admin_url, "GET", "exchanges", broker.vhost, f"{ns}.requests", "bindings", "source")
        assert bindings == []  # nothing is routed to a system until a worker serves it

        assert stat.S_IMODE(broker.credentials.stat().st_mode) == 0o600
        passwords = broker.passwords()
        assert sorted(passwords) == sorted(users)
        assert len(set(passwords.values())) == len(users)
        assert not any(p in repr(report) for p in passwords.values())

    async def test_rerun_keeps_passwords_and_rotate_replaces_them(self, broker: Broker) -> None:
        await broker.setup()
        first = broker.passwords()
        old_url = broker.accounts.url_for(broker.subsystems[0])

        again = await broker.setup()
        assert broker.passwords() == first
        assert not again.vhost_created and again.created == again.rotated == again.reset == []
        await (await aio_pika.connect(old_url)).close()

        rotated = await broker.setup(rotate=True)
        assert rotated.rotated == sorted(first)
        assert all(broker.passwords()[u] != first[u] for u in first)
        with pytest.raises(ProbableAuthenticationError):
            await aio_pika.connect(old_url)
        await (await aio_pika.connect(broker.accounts.url_for(broker.subsystems[0]))).close()

    async def test_user_missing_from_the_file_is_reported_reset(self, broker: Broker) -> None:
        await broker.setup()
        passwords = broker.passwords()
        lost = broker.subsystems[1]
        del passwords[lost]
        write_credentials(broker.credentials, passwords)
        report = await broker.setup()
        assert report.reset == [lost] and report.created == []
        await (await aio_pika.connect(broker.accounts.url_for(lost))).close()

    async def test_stale_users_are_reported_then_pruned(self, broker: Broker) -> None:
        await broker.setup()
        gone = broker.subsystems[2]
        kept = broker.subsystems[:2]

        report = await broker.setup(kept)
        assert report.stale == [gone] and report.pruned == []
        assert gone in broker.passwords()
        assert _admin(broker.admin_url, "GET", "users", gone) is not None

        report = await broker.setup(kept, prune=True)
        assert report.pruned == [gone]
        assert gone not in broker.passwords()
        assert _admin(broker.admin_url, "GET", "users", gone) is None
        assert _admin(broker.admin_url, "GET", "users", kept[0]) is not None

    async def test_refuses_a_subsystem_named_like_the_worker(self, broker: Broker) -> None:
        from ehis.bus.broker_setup import BrokerSetupError

        with pytest.raises(BrokerSetupError, match="worker or the admin"):
            await broker.setup([broker.worker])
        assert not broker.credentials.exists()

    async def test_command_prints_users_and_templates_never_passwords(
        self, broker: Broker, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # the test's own worker user: a real ehis-worker on this broker keeps its password
        monkeypatch.setattr(broker_commands, "setup_broker", functools.partial(setup_broker, worker_user=broker.worker))
        parser = argparse.ArgumentParser(prog="ehis")
        register(parser.add_subparsers(dest="command", required=True))
        sub = broker.subsystems[0]
        url = urlsplit(broker.amqp_url)._replace(path=f"/{broker.vhost}").geturl()  # the vhost comes from the URL
        args = parser.parse_args(["broker", "setup", "--broker", url, "--admin-url", broker.admin_url])
        settings = Settings(access={sub: ["din.person"]}, event_access={sub: ["edliyye.death"]},
                            bus_namespace=broker.namespace, data_dir=broker.credentials.parent)
        assert await asyncio.to_thread(args.run, args, settings) == 0
        out = capsys.readouterr().out
        assert f"users created: {', '.join(sorted([sub, broker.worker]))}" in out
        assert str(broker.credentials) in out  # the default path, under data_dir
        assert f"{broker.namespace}.events.{sub}" in out  # its event queue
        assert f"{sub}:" not in out and f"/{broker.vhost}" in out and "<password>" in out
        assert sorted(broker.passwords()) == sorted([sub, broker.worker])
        assert not any(p in out for p in broker.passwords().values())
        assert "guest:guest" not in out

    async def test_command_needs_an_amqp_broker(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        parser = argparse.ArgumentParser(prog="ehis")
        register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(["broker", "setup", "--broker", "memory://"])
        assert args.run(args, Settings(data_dir=tmp_path)) == 2
        assert "EHIS_BROKER_URL" in capsys.readouterr().err


@pytest.mark.rabbitmq
class TestPermissions:
    async def test_subsystem_round_trip_carries_its_broker_user(self, ready: Broker) -> None:
        accounts, ns = ready.accounts, ready.namespace
        async with open_transport(accounts.url_for(ready.worker), namespace=ns) as worker:
            await worker.serve(["din.person"], "din", _echo_identity)
            for subsystem in ready.subsystems[:2]:
                async with open_transport(accounts.url_for(subsystem), namespace=ns) as client:
                    reply = await _call(client)
                    assert reply.status == "ok", reply.error
                    assert reply.data == {"broker_user": subsystem}

    async def test_a_service_no_worker_serves_reaches_the_catch_all_queue(self, ready: Broker) -> None:
        """Under least privilege too: the alternate exchange routes what no system queue takes."""
        accounts, ns = ready.accounts, ready.namespace
        async with open_transport(accounts.url_for(ready.worker), namespace=ns) as worker:
            await worker.serve([], UNROUTED, _echo_identity)
            async with open_transport(accounts.url_for(ready.subsystems[0]), namespace=ns) as client:
                for service in ("din.person", "no.such-service"):
                    reply = await _call(client, service)
                    assert reply.status == "ok" and reply.data == {"broker_user": ready.subsystems[0]}, reply

    async def test_forged_user_id_is_refused_by_the_broker(self, ready: Broker) -> None:
        accounts, ns = ready.accounts, ready.namespace
        me, victim = ready.subsystems[:2]
        seen: list[str | None] = []

        async def record(delivery: Delivery) -> bytes:
            seen.append(delivery.broker_user)
            return await _echo_identity(delivery)

        async with open_transport(accounts.url_for(ready.worker), namespace=ns) as worker:
            await worker.serve(["din.person"], "din", record)
            connection = await aio_pika.connect(accounts.url_for(me))
            async with connection:
                channel = await connection.channel(publisher_confirms=True)
                replies = await channel.get_queue("amq.rabbitmq.reply-to")
                await replies.consume(_ignore, no_ack=True)
                requests = await channel.get_exchange(f"{ns}.requests")
                # a request like the transport's in every way but the identity it claims
                forged = aio_pika.Message(b'{"id": "forged"}', user_id=victim, reply_to="amq.rabbitmq.reply-to")
                with pytest.raises(ChannelPreconditionFailed, match="user_id"):
                    await requests.publish(forged, routing_key="din.person")
                assert channel.is_closed
            async with open_transport(accounts.url_for(me), namespace=ns) as client:
                assert (await _call(client)).data == {"broker_user": me}
        assert seen == [me]  # the forged request never reached the worker

    async def test_subsystem_cannot_read_queues_configure_or_publish_elsewhere(self, ready: Broker) -> None:
        ns = ready.namespace
        connection = await aio_pika.connect(ready.accounts.url_for(ready.subsystems[0]))
        async with connection:
            refusals = {
                "consume the catch-all queue": lambda ch: _consume(ch, f"{ns}.unrouted"),
                "get from the catch-all queue": lambda ch: _get(ch, f"{ns}.unrouted"),
                "read the dead letters": lambda ch: _consume(ch, f"{ns}.dead"),
                "declare a named queue": lambda ch: ch.declare_queue(f"{ns}.mine", durable=True),
                "declare a server-named queue": lambda ch: ch.declare_queue(exclusive=True),
                "redeclare the requests exchange": lambda ch: ch.declare_exchange(
                    f"{ns}.requests", aio_pika.ExchangeType.DIRECT, durable=True),
                "delete the requests exchange": lambda ch: ch.exchange_delete(f"{ns}.requests"),
                "publish to a queue directly": lambda ch: ch.default_exchange.publish(
                    aio_pika.Message(b"{}", user_id=ready.subsystems[0]), routing_key=f"{ns}.unrouted"),
            }
            for what, attempt in refusals.items():
                channel = await connection.channel(publisher_confirms=True)
                with pytest.raises(ChannelAccessRefused):
                    await attempt(channel)
                    pytest.fail(f"a subsystem could {what}")

    async def test_worker_serves_dead_letters_but_cannot_send_requests(self, ready: Broker) -> None:
        accounts, ns = ready.accounts, ready.namespace

        async def broken(delivery: Delivery) -> bytes:
            raise RuntimeError("a handler defect")

        async with open_transport(accounts.url_for(ready.worker), namespace=ns) as worker:
            await worker.serve(["din.person"], "din", broken)
            async with open_transport(accounts.url_for(ready.subsystems[0]), namespace=ns) as client:
                assert (await _call(client)).status == "error"
        dead = await _wait_for_messages(ready, f"{ns}.dead")
        assert dead == 1  # dead-lettering works under the worker's permissions

        connection = await aio_pika.connect(accounts.url_for(ready.worker))
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            requests = await channel.get_exchange(f"{ns}.requests")
            with pytest.raises(ChannelAccessRefused):
                await requests.publish(aio_pika.Message(b"{}", user_id=ready.worker), routing_key="din.person")


async def _consume(channel: aio_pika.abc.AbstractChannel, name: str) -> None:
    queue = await channel.get_queue(name)  # passive: allowed, it reveals only that the queue exists
    await queue.consume(_ignore)


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    pass


async def _get(channel: aio_pika.abc.AbstractChannel, name: str) -> None:
    queue = await channel.get_queue(name)
    await queue.get(fail=False)


async def _wait_for_messages(broker: Broker, queue: str, within: float = 5.0) -> int:
    """Messages in `queue`, seen with the admin login (the management stats lag; AMQP does not)."""
    admin = urlsplit(broker.admin_url)
    url = urlsplit(broker.amqp_url)._replace(
        netloc=f"{admin.username}:{admin.password}@{urlsplit(broker.amqp_url).netloc.rpartition('@')[2]}",
        path="/" + quote(broker.vhost, safe=""),
    ).geturl()
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for _ in range(int(within / 0.05)):
            count = (await channel.declare_queue(queue, passive=True)).declaration_result.message_count or 0
            if count:
                return count
            await asyncio.sleep(0.05)
    return 0


@pytest.mark.rabbitmq
async def test_a_user_prefix_keeps_a_deployments_users_apart(broker: Broker) -> None:
    """Users are broker-wide: two deployments (a test and a running hub) share a broker safely."""
    report = await setup_broker(broker.admin_url, broker.amqp_url, vhost=broker.vhost, namespace=broker.namespace,
                                subsystems=["emek-muqavilesi"], credentials=broker.credentials,
                                worker_user="ehis-worker", user_prefix="t-prefix-")
    try:
        assert report.created == ["t-prefix-ehis-worker", "t-prefix-emek-muqavilesi"]
        accounts = load_accounts(broker.credentials, broker.amqp_url, broker.vhost, "t-prefix-")
        assert "t-prefix-emek-muqavilesi:" in accounts.url_for("emek-muqavilesi")
        await (await aio_pika.connect(accounts.url_for("ehis-worker"))).close()
    finally:
        await delete_users(broker.admin_url, report.created)
