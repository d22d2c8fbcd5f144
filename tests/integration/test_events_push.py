"""Pushed events through the hub in process: the inbound endpoint on a real socket, the outbox,
the memory:// event bus, each subscriber the event policy names, and the exchange log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.contracts import xroad
from ehis.runtime import RunningHub
from ehis.security.pki import OPERATOR_CN
from ehis.security.signing import EnvelopeVerifier
from ehis.simulators import create_app
from ehis.sources.edliyye.models import Death
from ehis.testing import hub_in_process
from tests.integration.events_helpers import death, nothing_for, push, push_body, take

FIN = "5GXM4DZ"
DEATH_RECEIVERS = ["pensiya", "sanatoriya", "sosial-odenisler", "tseras", "vemtas"]


@pytest.fixture
async def hub(tmp_path: Path, pki) -> AsyncIterator[RunningHub]:
    async with hub_in_process(tmp_path, pki, create_app(pki), events=True, events_listen="127.0.0.1:0",
                              event_poll_interval=60) as running:
        yield running


def url(hub: RunningHub) -> str:
    assert hub.events is not None and hub.events.inbound_url is not None
    return hub.events.inbound_url


async def test_a_pushed_death_reaches_every_subsystem_the_policy_names_and_no_other(hub, pki) -> None:
    body = push_body(pki, "edliyye", [death("ev-1", FIN)])
    response = await push(url(hub), "edliyye", body)
    assert response.status_code == 200, response.text
    verified = EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer=OPERATOR_CN)
    answer = verified.envelope.find(xroad.BODY)[0]
    assert [e.text for e in answer] == ["ev-1"]
    assert verified.envelope.find(f"{xroad.HEADER}/{xroad.REQUEST_HASH}").text == xroad.request_hash(body)
    for subsystem in DEATH_RECEIVERS:
        (received,) = await take(hub.transport, subsystem, 1)
        event = received.event
        assert (event.id, event.key, event.subject, event.via) == ("edliyye:ev-1", "edliyye.death", FIN, "push")
        assert event.signed_by.endswith("CN=edliyye") or "edliyye" in event.signed_by
        typed = event.typed()
        assert isinstance(typed, Death) and typed.fin == FIN and str(typed.date) == "2026-11-01"
    assert await nothing_for(hub.transport, "pensiya")
    with pytest.raises(Exception, match="no event queue"):
        await take(hub.transport, "sened-dovriyyesi", 1, within=0.5)  # receives no kind at all
    assert await nothing_for(hub.transport, "emek-muqavilesi")  # receives permits, not deaths


async def test_the_exchange_log_records_the_event_received_and_each_delivery(hub, pki) -> None:
    assert (await push(url(hub), "edliyye", push_body(pki, "edliyye", [death("ev-2", FIN)]))).status_code == 200
    await take(hub.transport, "pensiya", 1)
    records = await hub.parts.log.search(LogQuery(subject=FIN, service="edliyye.death"))
    received = [r for r in records if r.subsystem == "ehis-events"]
    delivered = sorted(r.subsystem for r in records if r.parent_id is not None)
    assert len(received) == 1 and received[0].outcome == "ok" and received[0].evidence
    assert delivered == DEATH_RECEIVERS
    assert {r.parent_id for r in records if r.parent_id} == {received[0].request_id}


async def test_an_event_pushed_again_is_acknowledged_and_delivered_once(hub, pki) -> None:
    for _ in range(3):
        response = await push(url(hub), "edliyye", push_body(pki, "edliyye", [death("ev-3", FIN)]))
        assert response.status_code == 200
    (first,) = await take(hub.transport, "pensiya", 1)
    assert first.event.id == "edliyye:ev-3"
    assert await nothing_for(hub.transport, "pensiya")
    records = await hub.parts.log.search(LogQuery(subject=FIN, service="edliyye.death", subsystem="ehis-events"))
    assert len(records) == 1


async def test_the_same_event_arriving_twice_at_once_is_recorded_received_once(hub, pki) -> None:
    """A push and a catch-up poll (here: two pushes) racing with the same new event: one
    "received" record, one delivery, whichever comes first."""
    import asyncio

    body = push_body(pki, "edliyye", [death("ev-race", FIN)])
    responses = await asyncio.gather(*(push(url(hub), "edliyye", body) for _ in range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    await take(hub.transport, "pensiya", 1)
    assert await nothing_for(hub.transport, "pensiya")
    records = await hub.parts.log.search(LogQuery(subject=FIN, service="edliyye.death", subsystem="ehis-events"))
    assert len(records) == 1, [r.request_id for r in records]


async def test_a_push_signed_by_another_source_is_refused_recorded_and_never_delivered(hub, pki) -> None:
    response = await push(url(hub), "edliyye", push_body(pki, "edliyye", [death("ev-4", FIN)], signer="din"))
    assert response.status_code == 500
    fault = EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer=OPERATOR_CN).envelope
    assert fault.findtext(f"{xroad.BODY}/{xroad.FAULT}/faultcode") == "soap:Client"
    assert "signature" in fault.findtext(f"{xroad.BODY}/{xroad.FAULT}/faultstring")
    assert await nothing_for(hub.transport, "pensiya")
    refused = await hub.parts.log.search(LogQuery(service="edliyye.events"))
    assert [r.error_code for r in refused] == ["signature_invalid"] and refused[0].subject is None


async def test_a_malformed_event_refuses_the_whole_push_with_invalid_input(hub, pki) -> None:
    wrong = death("ev-5", FIN)
    wrong["kind"] = "birth"  # a birth carrying a death act
    response = await push(url(hub), "edliyye", push_body(pki, "edliyye", [death("ev-6", FIN), wrong]))
    assert response.status_code == 500
    fault = etree.fromstring(response.content).find(f"{xroad.BODY}/{xroad.FAULT}")
    assert fault.findtext("faultcode") == "soap:Client" and fault.find("detail") is not None
    assert await nothing_for(hub.transport, "pensiya")


@pytest.mark.parametrize("problem", ["tampered", "not xml", "other member", "too large"])
async def test_hostile_pushes_are_refused_with_a_fault(hub, pki, problem) -> None:
    body = push_body(pki, "edliyye", [death("ev-7", FIN)],
                     member_code="dmx" if problem == "other member" else None)
    if problem == "tampered":
        body = body.replace(FIN.encode(), b"7HJK2LM")
    elif problem == "not xml":
        body = b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"
    elif problem == "too large":
        body = b"<x>" + b" " * (3 * 1024 * 1024) + b"</x>"
    response = await push(url(hub), "edliyye", body)
    assert response.status_code == 500
    assert b"soap:Client" in response.content
    assert await nothing_for(hub.transport, "pensiya", 0.2)


async def test_a_system_that_does_not_push_has_no_endpoint(hub, pki) -> None:
    response = await push(url(hub), "din", push_body(pki, "edliyye", [death("ev-8", FIN)]))
    assert response.status_code == 404


async def test_a_death_drops_the_stored_answers_it_made_stale(hub, pki) -> None:
    client = BusClient(hub.transport, requester=Requester(subsystem="pensiya", user="u", purpose="p"))
    assert (await client.request("din.person", {"fin": FIN})).meta.cache == "miss"
    assert (await client.request("din.person", {"fin": FIN})).meta.cache == "hit"
    assert (await push(url(hub), "edliyye", push_body(pki, "edliyye", [death("ev-9", FIN)]))).status_code == 200
    assert (await client.request("din.person", {"fin": FIN})).meta.cache == "miss"


async def test_a_rejected_event_comes_back_and_is_dead_lettered_after_the_limit(hub, pki) -> None:
    from ehis.bus.events import EVENT_DELIVERY_LIMIT

    assert (await push(url(hub), "edliyye", push_body(pki, "edliyye", [death("ev-10", FIN)]))).status_code == 200
    for attempt in range(1, EVENT_DELIVERY_LIMIT + 2):  # the limit counts returns
        (received,) = await take(hub.transport, "tseras", 1, ack=False)
        assert received.deliveries == attempt
        await received.reject()
    assert await nothing_for(hub.transport, "tseras")
