"""End to end: simulators and worker as real processes on real sockets, the CLI as the caller,
over the real RabbitMQ. This is what a newcomer does after reading the README."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import httpx
import pytest

from ehis.bus.amqp import delete_namespace
from ehis.testing import ehis_env, free_port, simulators, worker

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq]


def ehis(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ehis", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, rabbitmq_url):
    """`ehis pki init`, `ehis simulators serve` and `ehis serve --broker amqp://...`, as processes."""
    tmp = tmp_path_factory.mktemp("e2e")
    sim_url = f"http://127.0.0.1:{free_port()}"
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    env = ehis_env(pki_dir=str(tmp / "pki"), simulator_url=sim_url, bus_namespace=namespace)
    made = ehis(["pki", "init", str(tmp / "pki")], env)
    assert made.returncode == 0, made.stderr
    env_worker = dict(env)
    with simulators(env, sim_url), worker(env_worker | {"EHIS_BROKER_URL": rabbitmq_url}) as proc:
        yield {"env": env, "sim_url": sim_url, "broker": rabbitmq_url, "worker": proc}
    asyncio.run(delete_namespace(rabbitmq_url, namespace))


def test_person_request_through_rabbitmq_comes_back_verified_and_mapped(hub):
    done = ehis(["request", "din.person", "fin=5gxm4dz", "--as", "emek-muqavilesi", "--purpose", "contract 118",
                 "--broker", hub["broker"]], hub["env"])
    assert done.returncode == 0, done.stdout + done.stderr
    reply = json.loads(done.stdout)
    assert reply["status"] == "ok"
    assert reply["data"]["fin"] == "5GXM4DZ"
    assert reply["data"]["document"]["type"] in ("ID_CARD", "RESIDENCE_PERMIT")
    assert reply["meta"]["signed_by"].startswith("CN=din,")
    journal = httpx.get(f"{hub['sim_url']}/_admin/journal", params={"system": "din"}).json()["entries"]
    mine = [e for e in journal if e["client"] == "emek-muqavilesi" and e["outcome"] == "ok"]
    assert mine and mine[-1]["signature_ok"] and "meis-operator" in mine[-1]["signature"]


@pytest.mark.parametrize("args,code", [
    (["din.person", "fin=0AB12CD", "--as", "emek-muqavilesi"], "not_found"),
    (["din.person", "fin=XX", "--as", "emek-muqavilesi"], "invalid_input"),
    (["din.person", "fin=5GXM4DZ", "--as", "monitorinq"], "forbidden"),
    (["din.passport", "fin=5GXM4DZ", "--as", "emek-muqavilesi"], "unknown_service"),
    (["vergiler.taxpayer", "voen=1234567891", "--as", "emek-muqavilesi", "--timeout", "2"], None),
])
def test_error_replies_exit_non_zero_and_say_what_happened(hub, args, code):
    done = ehis(["request", *args, "--broker", hub["broker"]], hub["env"])
    assert done.returncode == 1, done.stdout + done.stderr
    reply = json.loads(done.stdout)
    assert reply["status"] == "error"
    # vergiler has no worker: unroutable at once ("unavailable")
    assert reply["error"]["code"] == (code or "unavailable")


def test_worker_logs_no_personal_data(hub):
    ehis(["request", "din.person", "fin=7ABC123", "--as", "emek-muqavilesi", "--broker", hub["broker"]], hub["env"])
    output = hub["worker"].output()
    assert "din.person" in output  # it does log the exchange...
    assert "7ABC123" not in output  # ...but never the FIN


def test_demo_runs_every_case_as_expected(tmp_path):
    done = ehis(["demo"], ehis_env(pki_dir=str(tmp_path / "pki")), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 of 7 outcomes as expected" in done.stdout
