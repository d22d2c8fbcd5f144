"""End to end: simulators and worker as real processes on real sockets, the CLI as the caller,
over the real RabbitMQ. This is what a newcomer does after reading the README."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from ehis.bus.broker_setup import WORKER_USER, delete_users, delete_vhost, load_accounts
from ehis.config import Settings
from ehis.policy import DEFAULT_ACCESS, AccessPolicy
from ehis.sources import sources
from ehis.testing import ehis_env, free_port, simulators, worker

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq]

# The worker of these tests serves every built source but the last: its services are not served.
UNSERVED = list(sources().values())[-1]
SERVED = [code for code in sources() if code != UNSERVED.code]


def ehis(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ehis", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, rabbitmq_url):
    """`ehis pki init`, `ehis broker setup`, `ehis simulators serve` and `ehis serve`, as processes:
    the worker logs in as ehis-worker, each caller as its own subsystem's broker user."""
    tmp = tmp_path_factory.mktemp("e2e")
    sim_url = f"http://127.0.0.1:{free_port()}"
    admin_port = free_port()
    tag = uuid.uuid4().hex[:8]
    vhost, prefix = f"e2e-{tag}", f"e2e-{tag}-"  # users are broker-wide: ours never touch a running hub's
    credentials = tmp / "broker-credentials.json"
    broker = f"{rabbitmq_url.rstrip('/')}/{vhost}"
    env = ehis_env(pki_dir=str(tmp / "pki"), data_dir=str(tmp / "data"), simulator_url=sim_url,
                   bus_namespace="ehis", admin_listen=f"127.0.0.1:{admin_port}", admin_password="e2e-secret",
                   broker_user_prefix=prefix)
    made = ehis(["pki", "init", str(tmp / "pki")], env)
    assert made.returncode == 0, made.stderr
    setup = ehis(["broker", "setup", "--broker", broker, "--credentials", str(credentials)], env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    accounts = load_accounts(credentials, rabbitmq_url, vhost, prefix)
    try:
        serving = {"EHIS_BROKER_URL": accounts.url_for(WORKER_USER), "EHIS_SERVE_SOURCES": json.dumps(SERVED)}
        with simulators(env, sim_url), worker(env | serving) as proc:
            yield {"env": env, "sim_url": sim_url, "accounts": accounts, "worker": proc,
                   "admin": f"http://127.0.0.1:{admin_port}"}
    finally:
        settings = Settings()
        asyncio.run(delete_vhost(settings.broker_admin_url, vhost))
        asyncio.run(delete_users(settings.broker_admin_url, accounts.users))


def request(hub, subsystem: str, *args: str, broker_user: str | None = None) -> subprocess.CompletedProcess[str]:
    """`ehis request` as `subsystem`, logged in to the broker as `broker_user` (default: itself)."""
    url = hub["accounts"].url_for(broker_user or subsystem)
    return ehis(["request", *args, "--as", subsystem, "--broker", url], hub["env"])


def reply_of(done: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(done.stdout)


def journal(hub) -> list[dict]:
    return httpx.get(f"{hub['sim_url']}/_admin/journal", params={"system": "din"}).json()["entries"]


def test_person_request_through_rabbitmq_comes_back_verified_and_mapped(hub):
    done = request(hub, "emek-muqavilesi", "din.person", "fin=5gxm4dz", "--purpose", "contract 118")
    assert done.returncode == 0, done.stdout + done.stderr
    reply = reply_of(done)
    assert reply["status"] == "ok"
    assert reply["data"]["fin"] == "5GXM4DZ"
    assert reply["data"]["document"]["type"] in ("ID_CARD", "RESIDENCE_PERMIT")
    assert reply["meta"]["signed_by"].startswith("CN=din,")
    mine = [e for e in journal(hub) if e["client"] == "emek-muqavilesi" and e["outcome"] == "ok"]
    assert mine and mine[-1]["signature_ok"] and "meis-operator" in mine[-1]["signature"]


@pytest.mark.parametrize("subsystem,args,code", [
    ("emek-muqavilesi", ["din.person", "fin=0AB12CD"], "not_found"),
    ("emek-muqavilesi", ["din.person", "fin=XX"], "invalid_input"),
    ("monitorinq", ["din.person", "fin=5GXM4DZ"], "forbidden"),
    ("emek-muqavilesi", ["din.passport", "fin=5GXM4DZ"], "unknown_service"),
    (next(c for c in DEFAULT_ACCESS if AccessPolicy(DEFAULT_ACCESS).allows(c, UNSERVED.services[0].name)),
     [UNSERVED.services[0].name, *(f"{k}={v}" for k, v in UNSERVED.services[0].example.items())], "not_served"),
])
def test_error_replies_exit_non_zero_and_say_what_happened(hub, subsystem, args, code):
    done = request(hub, subsystem, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    reply = reply_of(done)
    assert reply["status"] == "error" and reply["error"]["code"] == code


def test_a_subsystem_cannot_ask_in_another_subsystems_name(hub):
    """monitorinq may not read din.person; claiming to be emek-muqavilesi does not help."""
    done = request(hub, "emek-muqavilesi", "din.person", "fin=5GXM4DZ", broker_user="monitorinq")
    reply = reply_of(done)
    assert reply["error"]["code"] == "forbidden" and "-monitorinq'" in reply["error"]["message"]
    search = ehis(["log", "search", "--subject", "5GXM4DZ", "--outcome", "error", "--json"], hub["env"])
    records = json.loads(search.stdout)
    mine = [r for r in records if r["request_id"] == reply["id"]]
    assert mine and mine[0]["subsystem"] == "monitorinq" and mine[0]["error_code"] == "forbidden"


def test_a_hanging_source_still_gets_the_caller_a_reply_by_its_deadline(hub):
    sim = hub["sim_url"]
    httpx.post(f"{sim}/_admin/faults", json={"kind": "hang", "system": "din"}).raise_for_status()
    try:
        started = time.monotonic()
        done = request(hub, "emek-muqavilesi", "din.person", "fin=9HJK2LM", "--timeout", "2")
        took = time.monotonic() - started
    finally:
        httpx.delete(f"{sim}/_admin/faults").raise_for_status()
    reply = reply_of(done)
    assert reply["error"]["code"] == "deadline_exceeded" and "din had not answered" in reply["error"]["message"]
    assert took < 2 + 3  # the deadline, plus starting the CLI process


def test_the_exchange_log_verifies_and_tells_a_citizen_who_looked(hub):
    request(hub, "cagri-merkezi", "din.person", "fin=6QWE3RT", "--purpose", "caller asked about pension")
    verify = ehis(["log", "verify"], hub["env"])
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = ehis(["log", "report", "6QWE3RT"], hub["env"])
    assert report.returncode == 0 and "cagri-merkezi" in report.stdout and "caller asked about pension" in report.stdout


def test_metrics_and_health_of_the_running_worker(hub):
    request(hub, "emek-muqavilesi", "din.person", "fin=5GXM4DZ")
    metrics = httpx.get(f"{hub['admin']}/metrics").text
    assert 'ehis_requests_total{caller="emek-muqavilesi",outcome="ok",service="din.person"}' in metrics
    assert 'ehis_source_breaker_state{source="din",state="closed"} 1.0' in metrics
    ready = httpx.get(f"{hub['admin']}/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"bus": True, "exchange_log": True, "timestamps": True}
    assert httpx.get(f"{hub['admin']}/api/sources").status_code == 401  # the admin API needs its password
    assert httpx.get(f"{hub['admin']}/api/sources", auth=("admin", "e2e-secret")).status_code == 200


def test_worker_logs_no_personal_data(hub):
    request(hub, "emek-muqavilesi", "din.person", "fin=7ABC123")
    output = hub["worker"].output()
    assert "din.person" in output  # it does log the exchange...
    assert "7ABC123" not in output  # ...but never the FIN


def test_demo_runs_every_case_as_expected(tmp_path):
    done = ehis(["demo"], ehis_env(data_dir=str(tmp_path)), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = re.search(r"(\d+) of (\d+) outcomes as expected", done.stdout)
    assert counts and counts[1] == counts[2] and int(counts[2]) >= 8, done.stdout
