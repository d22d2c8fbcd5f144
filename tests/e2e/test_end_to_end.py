"""End to end: simulators and worker as real processes on real sockets, the CLI as the caller,
over the real RabbitMQ. This is what a newcomer does after reading the README."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid

import httpx
import pytest

from ehis.bus.broker_setup import WORKER_USER, delete_users, delete_vhost, load_accounts
from ehis.config import Settings
from ehis.testing import ehis_env, free_port, run_ehis, simulators, worker

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq]


def ehis(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_ehis(args, env, timeout=timeout)


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
        with simulators(env, sim_url), worker(env | {"EHIS_BROKER_URL": accounts.url_for(WORKER_USER)}) as proc:
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
    assert "pensiya receives edliyye.death" in done.stdout and "vemtas receives din.address-changed" in done.stdout


# -- composites, over RabbitMQ with real processes --------------------------------------------------


def log_records(hub) -> list:
    """The worker's exchange log, read as an auditor would (the SQLite file under its data dir)."""
    from ehis.audit import open_log
    from ehis.audit.model import LogQuery

    async def read() -> list:
        async with open_log(f"sqlite:///{hub['env']['EHIS_DATA_DIR']}/ehis.db") as log:
            return await log.search(LogQuery(limit=5000))

    return asyncio.run(read())


@pytest.mark.parametrize("employee,employer,status", [
    ("5GXM4DZ", "1402345671", "not_required"),  # a citizen
    ("ZTPDSRQ", "9966619221", "expired"),  # a foreigner whose permit for this employer has expired
])
def test_a_contract_prefill_through_rabbitmq(hub, employee, employer, status):
    done = request(hub, "emek-muqavilesi", "emek.contract-prefill", f"employer_voen={employer}",
                   f"employee_fin={employee}", "on=2025-01-01")
    assert done.returncode == 0, done.stdout + done.stderr
    reply = reply_of(done)
    assert reply["data"]["employee"]["fin"] == employee
    assert reply["data"]["permits"]["work_permit_status"] == status
    assert [r["field"] for r in reply["data"]["refused"]] == ["employee.ssn"]
    parts = [r for r in log_records(hub) if r.parent_id == reply["id"]]
    assert len(parts) == len(reply["data"]["parts"]) and all(p.signer for p in parts)


def test_a_means_test_through_rabbitmq_with_one_source_down_and_then_the_household(hub):
    sim = hub["sim_url"]
    args = ["vemtas.means-test", "fin=P9TCV69", "from=2024-01-01", "to=2024-12-31", "--timeout", "20"]
    httpx.post(f"{sim}/_admin/faults", json={"kind": "http_503", "system": "azeriqaz"}).raise_for_status()
    try:
        done = request(hub, "vemtas", *args)
    finally:
        httpx.delete(f"{sim}/_admin/faults").raise_for_status()
    reply = reply_of(done)
    assert done.returncode == 0 and len(reply["data"]["members"]) == 4, done.stdout
    assert {(m["fact"], m["error_code"]) for m in reply["data"]["incomplete"]} == {("gas", "unavailable")}
    parts = [r for r in log_records(hub) if r.parent_id == reply["id"]]
    assert len(parts) == 4 * (10 + 3) + 1 + 2 and len({p.request_id for p in parts}) == len(parts)

    httpx.post(f"{sim}/_admin/faults", json={"kind": "http_503", "system": "yih"}).raise_for_status()
    try:
        failed = request(hub, "vemtas", *args, "--fresh")  # the household is cached from the first
    finally:
        httpx.delete(f"{sim}/_admin/faults").raise_for_status()
    assert failed.returncode == 1 and reply_of(failed)["error"]["code"] == "unavailable"
