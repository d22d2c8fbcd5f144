"""The simulators' events through a hub in process: a pushed event (the simulators' pusher, over a
real socket to the inbound endpoint) and a polled one reach the subscribers the policy names; a
push the simulators sign badly on demand is refused and reaches nobody, and once the fault is
gone the pusher's retry delivers it exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from ehis.audit.model import LogQuery
from ehis.runtime import RunningHub
from ehis.simulators import FaultRule, create_app
from ehis.simulators.app import stop_events
from ehis.simulators.world import world
from ehis.sources.din.models import AddressChange
from ehis.sources.edliyye.models import Death
from ehis.testing import hub_in_process
from tests.integration.events_helpers import nothing_for, take


@pytest.fixture(autouse=True)
def base_world() -> Iterator[None]:
    world().reset_overlay()
    yield
    world().reset_overlay()


@pytest.fixture
async def hub(tmp_path: Path, pki) -> AsyncIterator[RunningHub]:
    async with hub_in_process(tmp_path, pki, create_app(pki), events=True, events_listen="127.0.0.1:0",
                              event_poll_interval=0.2) as running:
        yield running


@pytest.fixture
async def pushing(hub: RunningHub, pki) -> AsyncIterator[Starlette]:
    """Simulators whose pusher sends to the hub's inbound endpoint (backing off briefly); stopped
    off the event loop, where the hub may still be answering its last push."""
    assert hub.events is not None and hub.events.inbound_url is not None
    app = create_app(pki, hub_events_url=f"{hub.events.inbound_url}/events", push_backoff=(0.05, 0.2))
    yield app
    await asyncio.to_thread(stop_events, app)


async def admin(app: Starlette, method: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as http:
        return await http.request(method, "/_admin/events", **kw)


async def delivery(app: Starlette, event_id: str) -> dict[str, Any]:
    listed = (await admin(app, "GET")).json()["sources"]
    return next(e["delivery"] for feed in listed.values() for e in feed["events"] if e["id"] == event_id)


async def until(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Wait until `check()` holds (a bound on the wait, not a timed assertion)."""
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.05)


async def test_a_pushed_death_reaches_the_subscribers_and_is_acknowledged(hub, pushing) -> None:
    response = await admin(pushing, "POST", json={"kind": "edliyye.death", "params": {}})
    assert response.status_code == 201
    (event,) = response.json()["events"]
    for subsystem in ("pensiya", "tseras"):
        (received,) = await take(hub.transport, subsystem, 1, within=20)
        assert received.event.id == f"edliyye:{event['id']}" and received.event.via == "push"
        typed = received.event.typed()
        assert isinstance(typed, Death) and typed.fin == event["fin"] and typed.number == event["death"]["number"]
    await until(lambda: _state(pushing, event["id"], "delivered"))
    assert await nothing_for(hub.transport, "pensiya")


async def test_a_badly_signed_push_is_refused_then_delivered_once_the_fault_is_gone(hub, pushing) -> None:
    pushing.state.faults.add(FaultRule(kind="bad_signature", system="edliyye", operation="PushEvents"))
    (event,) = (await admin(pushing, "POST", json={"kind": "edliyye.death", "params": {}})).json()["events"]

    async def retried() -> bool:
        state = await delivery(pushing, event["id"])
        return state["attempts"] >= 2 and "signature" in (state["error"] or "")

    await until(retried)
    assert await nothing_for(hub.transport, "pensiya")
    refused = await hub.parts.log.search(LogQuery(service="edliyye.events"))
    assert refused and {r.error_code for r in refused} == {"signature_invalid"}
    pushing.state.faults.reset()
    (received,) = await take(hub.transport, "pensiya", 1, within=20)
    assert received.event.id == f"edliyye:{event['id']}"
    await until(lambda: _state(pushing, event["id"], "delivered"))
    assert await nothing_for(hub.transport, "pensiya")  # exactly once


async def test_a_referral_pushed_by_sehiyye_reaches_its_subscribers(hub, pushing) -> None:
    (event,) = (await admin(pushing, "POST", json={"kind": "sehiyye.referral-issued", "params": {}})).json()["events"]
    (received,) = await take(hub.transport, "sanatoriya", 1, within=20)
    assert received.event.key == "sehiyye.referral-issued" and received.event.subject == event["fin"]


async def test_a_polled_address_change_reaches_the_subscribers(hub, pushing) -> None:
    made = (await admin(pushing, "POST", json={"kind": "din.address-changed", "params": {}})).json()["events"]
    received = await take(hub.transport, "vemtas", len(made), within=20)
    assert sorted(r.event.id for r in received) == sorted(f"din:{e['id']}" for e in made)
    for r in received:
        assert r.event.via == "poll" and isinstance(r.event.typed(), AddressChange)
    assert await nothing_for(hub.transport, "vemtas")


async def _state(app: Starlette, event_id: str, wanted: str) -> bool:
    return (await delivery(app, event_id))["state"] == wanted
