"""What callers and operators see of a hub after mixed traffic (issue 14): typed models back from
`BusClient.fetch`, an admin error rate that holds only the source's failures against it, and a
failed source call that says what all its attempts did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ehis.admin import HubAdmin
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.errors import Forbidden, NotFound
from ehis.mapping.models import Person
from ehis.monitor.web import source_overview
from ehis.policy import DEFAULT_ACCESS, AccessPolicy
from ehis.runtime import RunningHub
from ehis.simulators import create_app
from ehis.simulators.faults import FaultRule
from ehis.sources import services
from ehis.testing import hub_in_process


@pytest.fixture
async def simulators(pki):
    return create_app(pki)


@pytest.fixture
async def hub(tmp_path: Path, pki, simulators) -> AsyncIterator[RunningHub]:
    guard = {"attempts": 3, "backoff_initial": 0.0, "backoff_max": 0.0, "breaker_minimum_calls": 100}
    async with hub_in_process(tmp_path, pki, simulators, source_defaults=guard) as running:
        yield running


def client(running: RunningHub, subsystem: str = "emek-muqavilesi") -> BusClient:
    return BusClient(running.transport, requester=Requester(subsystem=subsystem, user="AZ1", purpose="issue 14"),
                     default_timeout=10)


def caller_of(name: str) -> str:
    policy = AccessPolicy(DEFAULT_ACCESS)
    return next(c for c in DEFAULT_ACCESS if policy.allows(c, name))


async def test_fetch_returns_the_services_canonical_model(hub) -> None:
    person = await client(hub).fetch("din.person", {"fin": "5gxm4dz"})
    assert isinstance(person, Person) and person.fin == "5GXM4DZ"
    typed = await client(hub).fetch("din.person", {"fin": "5GXM4DZ"}, model=Person)
    assert typed == person
    with pytest.raises(NotFound):
        await client(hub).fetch("din.person", {"fin": "0AB12CD"})
    with pytest.raises(Forbidden):
        await client(hub, "monitorinq").fetch("din.person", {"fin": "5GXM4DZ"})


@pytest.mark.parametrize("name", [n for n, s in services().items() if s.example])
async def test_every_built_services_answer_validates_as_its_model(hub, name) -> None:
    spec = services()[name]
    model = await client(hub, caller_of(name)).fetch(name, dict(spec.example))
    assert isinstance(model, spec.model)


async def test_admin_error_rate_counts_only_the_sources_failures(hub, simulators) -> None:
    caller = client(hub)
    for fin in ("5GXM4DZ", "7KQP2LA", "9HJK2LM"):
        assert (await caller.request("din.person", {"fin": fin})).status == "ok"
    for _ in range(3):  # the callers' mistakes: not the source's
        assert (await client(hub, "monitorinq").request("din.person", {"fin": "5GXM4DZ"})).error.code == "forbidden"
    assert (await caller.request("din.person", {"fin": "XX"})).error.code == "invalid_input"
    assert (await caller.request("din.person", {"fin": "0AB12CD"})).error.code == "not_found"
    simulators.state.faults.add(FaultRule(kind="http_503", system="din"))
    failed = await caller.request("din.person", {"fin": "4JXN7PQ"})
    assert failed.error.code == "unavailable"
    # it says what all three attempts did, not only what the last one did
    message = failed.error.message
    assert message.startswith("3 attempts in ") and "the last: din answered HTTP 503" in message

    admin = HubAdmin(hub.parts, hub.transport)
    stats = await admin.source_stats(datetime.now(UTC) - timedelta(hours=1))
    (din,) = [entry for entry in source_overview(admin.sources(), stats, []) if entry["source"] == "din"]
    assert din["last_hour"]["calls"] == 9
    assert din["last_hour"]["errors"] == 1  # before: 6 of 9, the callers' 5 mistakes included
    assert din["last_hour"]["error_rate"] == pytest.approx(1 / 9)
    assert din["last_hour"]["caller_errors"] == 5
