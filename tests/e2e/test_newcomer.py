"""A newcomer's first hour (issue 14), against real processes on RabbitMQ: the README's Python
snippets run verbatim, logins come from the credentials file, every failure a user can cause is
one line with exit code 2 or 1, the audit commands take a FIN in any case, and
`ehis serve --processes 3` runs three workers behind one admin endpoint."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from ehis.bus.broker_setup import delete_users, delete_vhost, load_accounts
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.config import Settings
from ehis.policy import DEFAULT_ACCESS, AccessPolicy
from ehis.sources import sources
from ehis.testing import ehis_env, free_port, process, run_ehis, simulators, worker

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq]

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
SPARE = "vergiler"  # served only by the `--processes 3` test's workers
TAXPAYER = {"voen": "1402345671"}


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def ehis(args: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_ehis(args, env, timeout=timeout, cwd=ROOT)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """stderr, asserted to be one line and no traceback (beside `ehis serve`'s own log lines)."""
    lines = [line for line in done.stderr.strip().splitlines() if not re.match(r"\d{4}-\d\d-\d\d \d", line)]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def hub(tmp_path_factory, rabbitmq_url):
    """A hub as the README starts it, on a vhost and user prefix of this module's own; the broker
    URL in the environment names no password (the commands read the credentials file)."""
    tmp = tmp_path_factory.mktemp("newcomer")
    tag = uuid.uuid4().hex[:8]
    vhost, prefix = f"newcomer-{tag}", f"nc-{tag}-"
    host = rabbitmq_url.split("@")[-1].rstrip("/")
    sim_url = f"http://127.0.0.1:{free_port()}"
    env = ehis_env(pki_dir=str(tmp / "pki"), data_dir=str(tmp / "data"), simulator_url=sim_url,
                   broker_user_prefix=prefix, broker_url=f"amqp://{host}/{vhost}", admin_listen="",
                   broker_credentials=str(tmp / "broker-credentials.json"))
    env["PYTHONPATH"] = str(ROOT)
    made = ehis(["pki", "init", str(tmp / "pki")], env)
    assert made.returncode == 0, made.stderr
    setup = ehis(["broker", "setup"], env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    accounts = load_accounts(tmp / "broker-credentials.json", rabbitmq_url, vhost, prefix)
    served = json.dumps([code for code in sources() if code != SPARE])
    try:
        with simulators(env, sim_url) as sims, worker(env | {"EHIS_SERVE_SOURCES": served}) as proc:
            yield {"env": env, "tmp": tmp, "accounts": accounts, "host": host, "vhost": vhost, "worker": proc,
                   "simulators": sims}
    finally:
        settings = Settings()
        asyncio.run(delete_vhost(settings.broker_admin_url, vhost))
        asyncio.run(delete_users(settings.broker_admin_url, accounts.users))


def test_the_readme_has_python_snippets() -> None:
    assert python_blocks(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize("n", range(len(python_blocks(README.read_text(encoding="utf-8")))))
def test_every_readme_python_snippet_runs_verbatim(hub, n) -> None:
    snippet = python_blocks(README.read_text(encoding="utf-8"))[n]
    if "hub.events()" in snippet:  # the subscriber's snippet: a death happens first, pushed to the worker
        emitted = ehis(["simulators", "events", "emit", "edliyye.death"], hub["env"])
        assert emitted.returncode == 0, emitted.stderr
        death = json.loads(emitted.stdout)["events"][0]
    script = hub["tmp"] / f"snippet_{n}.py"
    script.write_text(snippet, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], env=hub["env"], capture_output=True, text=True,
                          timeout=60, cwd=hub["tmp"], check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    if "din.person" in snippet:  # the caller's snippet: a reply, a typed Person, a typed error
        lines = done.stdout.splitlines()
        assert lines[0].startswith("ok ") and "CN=din" in lines[0]
        assert lines[1].startswith("5GXM4DZ ")
        assert lines[2] == "not_found False"
    if "hub.events()" in snippet:
        assert f"edliyye.death {death['fin']} Death" in done.stdout.splitlines()


def test_request_logs_in_as_the_subsystem_with_the_password_from_the_file(hub) -> None:
    done = ehis(["request", "din.person", "fin=5gxm4dz", "--as", "emek-muqavilesi", "--purpose", "first hour"],
                hub["env"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"]["fin"] == "5GXM4DZ"
    assert done.stderr == ""  # a one-shot command prints its answer alone


def test_broker_url_prints_a_working_url_and_as_may_then_be_left_out(hub) -> None:
    url = ehis(["broker", "url", "emek-muqavilesi"], hub["env"])
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip() == hub["accounts"].url_for("emek-muqavilesi")
    done = ehis(["request", "din.person", "fin=5GXM4DZ", "--broker", url.stdout.strip()], hub["env"])
    assert done.returncode == 0, done.stderr
    missing = ehis(["broker", "url", "no-such-subsystem"], hub["env"])
    assert missing.returncode == 1 and "no such user" in one_line(missing)


def test_a_wrong_password_is_one_line_and_debug_shows_the_traceback(hub) -> None:
    prefix = hub["env"]["EHIS_BROKER_USER_PREFIX"]
    bad = f"amqp://{prefix}emek-muqavilesi:s3cr3t-guess@{hub['host']}/{hub['vhost']}"
    done = ehis(["request", "din.person", "fin=5GXM4DZ", "--broker", bad], hub["env"])
    assert done.returncode == 1
    assert "refused the login" in one_line(done) and "s3cr3t-guess" not in done.stderr  # never the password
    debug = ehis(["request", "din.person", "fin=5GXM4DZ", "--broker", bad, "--debug"], hub["env"])
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize(("args", "code", "says"), [
    (["request", "din.person", "fin=5GXM4DZ", "--as", "emek-muqavilesi", "--broker", "{missing_vhost}"], 1, "no vhost"),
    (["request", "din.person", "fin=5GXM4DZ", "--as", "emek-muqavilesi", "--broker", "{down}"], 1,
     "cannot reach the broker"),
    (["request", "din.person", "fin", "--as", "emek-muqavilesi"], 2, "is not KEY=VALUE"),
    (["request", "din.person", "fin=5GXM4DZ", "--timeout", "soon"], 2, "invalid float value"),
    (["request", "din.person", "fin=5GXM4DZ", "--as", "nobody-here"], 1, "no password for it"),
    (["serve", "--processes", "2", "--broker", "memory://"], 2, "--processes needs RabbitMQ"),
    (["log", "search", "--outcome", "timeout"], 2, "use --error timeout"),
    (["log", "report", "5GXM4D"], 2, "a data subject is a FIN"),
])
def test_each_failure_is_one_line_with_its_exit_code(hub, args, code, says) -> None:
    fill = {"missing_vhost": f"amqp://{hub['host']}/no-such-vhost-{uuid.uuid4().hex[:6]}",
            "down": f"amqp://127.0.0.1:{free_port()}/{hub['vhost']}"}
    done = ehis([a.format(**fill) for a in args], hub["env"])
    assert done.returncode == code, done.stdout + done.stderr
    assert says in one_line(done)


def test_an_error_reply_is_json_on_stdout_and_one_line_on_stderr(hub) -> None:
    done = ehis(["request", "din.passport", "fin=5GXM4DZ", "--as", "emek-muqavilesi"], hub["env"])
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "unknown_service"
    assert one_line(done).startswith("ehis request: unknown_service: ")


def test_a_worker_logged_in_as_a_subsystem_is_told_whom_to_log_in_as(hub) -> None:
    done = ehis(["serve", "--sources", "din", "--broker", hub["accounts"].url_for("emek-muqavilesi")], hub["env"])
    assert done.returncode == 1
    assert "a worker logs in as ehis-worker" in one_line(done)


def test_start_up_logs_say_which_sources_are_served(hub) -> None:
    assert re.search(r"simulators playing \d+ sources \(din, ", hub["simulators"].output())
    served = len(sources()) - 1
    assert f"worker serving {served} sources (din, " in hub["worker"].output()


def test_faults_reset_says_what_it_did(hub) -> None:
    env = hub["env"]
    assert ehis(["simulators", "faults", "add", "kind=http_503", "system=din", "first=1"], env).returncode == 0
    done = ehis(["simulators", "faults", "reset"], env)
    assert done.returncode == 0 and done.stdout.strip() == "removed 1 fault rule: the simulators answer normally"


def test_audit_commands_take_a_fin_in_any_case(hub) -> None:
    ehis(["request", "din.person", "fin=6QWE3RT", "--as", "cagri-merkezi", "--purpose", "pension question"], hub["env"])
    report = ehis(["log", "report", "6qwe3rt"], hub["env"])
    assert report.returncode == 0 and "cagri-merkezi" in report.stdout and "pension question" in report.stdout
    assert report.stderr == ""
    search = ehis(["log", "search", "--subject", " 6qwe3rt ", "--json"], hub["env"])
    assert [r["subject"] for r in json.loads(search.stdout)] and search.stderr == ""
    refused = ehis(["log", "search", "--error", "forbidden", "--json"], hub["env"])
    assert refused.returncode == 0 and all(r["error_code"] == "forbidden" for r in json.loads(refused.stdout))


def test_three_worker_processes_behind_one_admin_endpoint(hub) -> None:
    port = free_port()
    args = ["ehis", "serve", "--processes", "3", "--sources", SPARE, "--admin-listen", f"127.0.0.1:{port}"]
    with process(args, hub["env"], ready="3 worker processes serving", timeout=180) as parent:
        caller = next(c for c in DEFAULT_ACCESS if AccessPolicy(DEFAULT_ACCESS).allows(c, "vergiler.taxpayer"))

        async def ask() -> list[str]:
            transport_url = hub["accounts"].url_for(caller)
            async with BusClient.open(transport_url, requester=Requester(subsystem=caller, purpose="scale")) as c:
                replies = await asyncio.gather(*(c.request("vergiler.taxpayer", TAXPAYER, fresh=True)
                                                 for _ in range(9)))
            return [r.status for r in replies]

        assert asyncio.run(ask()) == ["ok"] * 9
        admin = f"http://127.0.0.1:{port}"
        metrics = httpx.get(f"{admin}/metrics", timeout=10).text
        assert 'ehis_worker_processes{state="answering"} 3.0' in metrics
        counted = re.search(rf'ehis_requests_total{{caller="{caller}",outcome="ok",service="vergiler.taxpayer"}} '
                            r"([0-9.]+)", metrics)
        assert counted and float(counted[1]) == 9  # every process's requests, summed
        ready = httpx.get(f"{admin}/health/ready", timeout=10).json()
        assert len(ready["processes"]) == 3 and {p["status"] for p in ready["processes"]} == {"ok"}

        second = ehis(["serve", "--sources", SPARE, "--admin-listen", f"127.0.0.1:{port}"], hub["env"])
        assert second.returncode == 1
        line = one_line(second)
        assert "in use" in line and "--admin-listen" in line and "--processes" in line

        parent.proc.terminate()
        assert parent.proc.wait(60) == 0
    assert "worker stopping" in parent.output() and parent.output().count("worker stopping") == 3
