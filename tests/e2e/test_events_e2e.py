"""Events end to end, as processes on RabbitMQ: `ehis broker setup`, two `ehis serve` workers
sharing one database, `ehis simulators serve`, a source pushing signed events to a worker's
inbound endpoint, and subscribers reading with `ehis events tail`.

- The worker holding the publisher's lease is frozen after an event is stored, then killed: the
  other worker takes the lease over and publishes from the outbox, so every subscriber the policy
  names gets the event once, and no other subscriber does.
- The simulators emit a birth (pushed by their pusher) and a death whose pushes fail (a fault on
  PushEvents): the death arrives by the hub reading edliyye's changes, and once the pushes go
  through again nobody gets it twice.
- Every worker is killed, address changes happen meanwhile, a worker starts again: it polls from
  the stored cursor, so each subscriber gets each change once, none lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

from ehis.bus.broker_setup import WORKER_USER, delete_users, delete_vhost, load_accounts
from ehis.config import Settings
from ehis.security.pki import Pki
from ehis.testing import Running, ehis_env, free_port, run_ehis, simulators, worker
from tests.integration.events_helpers import birth, push, push_body

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq]

BIRTH_RECEIVERS = ("ovladliq", "sosial-odenisler", "vemtas")


class Deployment:
    def __init__(self, env: dict[str, str], accounts, pki: Pki, common: dict[str, str]) -> None:
        self.env, self.accounts, self.pki, self.common = env, accounts, pki, common
        self.workers: dict[int, tuple[Running, str]] = {}  # pid -> (process, its inbound events URL)
        self.stack = ExitStack()

    def start_worker(self, events_port: int | None = None) -> Running:
        port = events_port or free_port()
        own = ehis_env(**self.common, events_listen=f"127.0.0.1:{port}") | {
            "EHIS_BROKER_URL": self.accounts.url_for(WORKER_USER)}
        proc = self.stack.enter_context(worker(own))
        self.workers[proc.proc.pid] = (proc, f"http://127.0.0.1:{port}")
        return proc

    def kill_workers(self) -> None:
        for pid, (proc, _) in list(self.workers.items()):
            os.kill(pid, signal.SIGKILL)
            proc.proc.wait(10)
            del self.workers[pid]

    def simulators(self, action: str, *args: str) -> dict:
        done = run_ehis(["simulators", action, *args], self.env)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}

    def events(self, subsystem: str, count: int | None = None, timeout: float = 2) -> list[dict]:
        """The next `count` events for `subsystem` (waiting up to `timeout` s for each), or with no
        count everything that comes until `timeout` s pass with none; acknowledged."""
        done = self.tail(subsystem, *(("--count", str(count)) if count else ()), "--timeout", str(timeout))
        assert done.returncode == 0 or count is not None, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    def tail(self, subsystem: str, *args: str, timeout: float = 60):
        return run_ehis(["events", "tail", "--as", subsystem, "--broker", self.accounts.url_for(subsystem),
                         "--json", *args], self.env, timeout=timeout)

    def status(self) -> dict:
        done = run_ehis(["events", "status", "--json", "--broker", self.accounts.url_for(WORKER_USER)], self.env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def unpublished(self) -> int:
        with closing(sqlite3.connect(Path(self.common["data_dir"]) / "ehis.db")) as db:
            return db.execute("SELECT COUNT(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0]

    def publisher_pid(self, within: float = 20.0) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            holder = self.status()["publisher"]
            if holder and int(holder.split(":")[1]) in self.workers:
                return int(holder.split(":")[1])
            time.sleep(0.3)
        raise AssertionError("no worker took the publisher's lease")


@pytest.fixture
def deployment(tmp_path: Path, rabbitmq_url: str) -> Iterator[Deployment]:
    tag = uuid.uuid4().hex[:8]
    vhost, prefix = f"e2e-ev-{tag}", f"e2e-ev-{tag}-"
    sim_url = f"http://127.0.0.1:{free_port()}"
    first_port = free_port()  # the first worker's inbound endpoint: where the simulators push
    common = {"pki_dir": str(tmp_path / "pki"), "data_dir": str(tmp_path / "data"), "simulator_url": sim_url,
              "broker_user_prefix": prefix, "admin_listen": "", "event_lease": "5", "event_poll_interval": "1",
              "event_catch_up_interval": "2"}
    env = ehis_env(**common, events_listen="", hub_events_url=f"http://127.0.0.1:{first_port}/events")
    assert run_ehis(["pki", "init", str(tmp_path / "pki")], env).returncode == 0
    credentials = tmp_path / "broker-credentials.json"
    setup = run_ehis(["broker", "setup", "--broker", f"{rabbitmq_url.rstrip('/')}/{vhost}",
                      "--credentials", str(credentials)], env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    accounts = load_accounts(credentials, rabbitmq_url, vhost, prefix)
    d = Deployment(env | {"EHIS_BROKER_CREDENTIALS": str(credentials)}, accounts, Pki(tmp_path / "pki"), common)
    try:
        with d.stack:
            d.stack.enter_context(simulators(env, sim_url))
            d.start_worker(first_port)
            d.start_worker()
            yield d
    finally:
        admin = Settings().broker_admin_url
        asyncio.run(delete_vhost(admin, vhost))
        asyncio.run(delete_users(admin, accounts.users))


def test_a_pushed_birth_reaches_each_receiver_once_when_the_publisher_dies_after_it_was_stored(deployment) -> None:
    d = deployment
    publisher = d.publisher_pid()
    (other_url,) = [url for pid, (_, url) in d.workers.items() if pid != publisher]
    os.kill(publisher, signal.SIGSTOP)  # frozen: it holds the lease and publishes nothing
    try:
        child = "7NB3KQ2"
        body = push_body(d.pki, "edliyye", [birth("ab-e2e-1", child, mother="5GXM4DZ")])
        response = asyncio.run(push(other_url, "edliyye", body))
        assert response.status_code == 200, response.text  # acknowledged: stored durably
        assert d.unpublished() == 1  # read from the database at once: the lease has seconds left
    finally:
        os.kill(publisher, signal.SIGKILL)
    d.workers[publisher][0].proc.wait(10)

    for subsystem in BIRTH_RECEIVERS:
        done = d.tail(subsystem, "--count", "1", "--timeout", "30")
        assert done.returncode == 0, done.stderr
        (line,) = done.stdout.splitlines()
        event = json.loads(line)
        assert (event["id"], event["key"], event["subject"], event["via"]) == \
               ("edliyye:ab-e2e-1", "edliyye.birth", child, "push")
        assert event["data"]["fin"] == child
        again = d.tail(subsystem, "--count", "1", "--timeout", "2")
        assert again.returncode == 1 and again.stdout == "", again.stdout  # once: nothing more
    nothing = d.tail("pensiya", "--count", "1", "--timeout", "2")  # deaths and addresses only
    assert nothing.returncode == 1 and "0 of 1 events" in nothing.stderr
    status = d.status()
    assert status["outbox"]["pending"] == 0 and status["sources"]["edliyye"]["received"] == 1
    assert status["publisher"] is not None and int(status["publisher"].split(":")[1]) != publisher


def test_a_subsystem_cannot_tail_another_ones_events(deployment) -> None:
    d = deployment
    url = d.accounts.url_for("pensiya")
    done = run_ehis(["events", "tail", "--as", "vemtas", "--broker", url, "--count", "1", "--timeout", "3"], d.env)
    assert done.returncode == 1
    print(done.stderr)
    assert "Traceback" not in done.stderr and "vemtas" in done.stderr, done.stderr


def test_a_pushed_birth_and_a_death_read_to_catch_up_reach_exactly_their_receivers_once(deployment) -> None:
    d = deployment
    d.simulators("faults", "add", "kind=http_503", "system=edliyye", "operation=PushEvents")
    (death,) = d.simulators("events", "emit", "edliyye.death")["events"]
    deaths = {s: d.events(s, 1, timeout=20) for s in ("pensiya", "tseras", "sanatoriya", "sosial-odenisler", "vemtas")}
    for subsystem, got in deaths.items():
        assert [(e["id"], e["via"], e["subject"]) for e in got] == \
               [(f"edliyye:{death['id']}", "poll", death["fin"])], subsystem

    d.simulators("faults", "reset")  # the pusher's retries now go through: the hub has it already
    (birth,) = d.simulators("events", "emit", "edliyye.birth")["events"]
    for subsystem in BIRTH_RECEIVERS:
        got = [e for e in d.events(subsystem, 1, timeout=20) if e["key"] == "edliyye.birth"]
        assert [e["id"] for e in got] == [f"edliyye:{birth['id']}"], subsystem
    for subsystem in ("pensiya", "tseras"):  # no repeat of the death, no birth
        assert [e for e in d.events(subsystem) if e["key"].startswith("edliyye.")] == []
    listed = d.simulators("events", "list")["sources"]["edliyye"]["events"]
    assert {e["id"]: e["delivery"]["state"] for e in listed} == {death["id"]: "delivered", birth["id"]: "delivered"}


def test_a_restarted_worker_polls_from_the_stored_cursor(deployment) -> None:
    d = deployment
    before = d.simulators("events", "emit", "din.address-changed")["events"]
    first = d.events("pensiya", len(before), timeout=10)
    assert sorted(e["id"] for e in first) == sorted(f"din:{e['id']}" for e in before)
    cursor = d.status()["sources"]["din"]["cursor"]
    assert cursor is not None

    d.kill_workers()
    during = d.simulators("events", "emit", "din.address-changed")["events"]
    d.start_worker()
    after = d.events("pensiya", len(during), timeout=20) + d.events("pensiya")
    assert sorted(e["id"] for e in after) == sorted(f"din:{e['id']}" for e in during)  # none lost, none again
    assert {e["via"] for e in after} == {"poll"}
    # the other receiver got both rounds, each once
    assert sorted(e["id"] for e in d.events("vemtas", len(before + during), timeout=5) + d.events("vemtas")) == sorted(
        f"din:{e['id']}" for e in before + during)
