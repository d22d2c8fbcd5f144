"""The composite services through the whole hub in one process: the employment-contract prefill
and the household means test, their parts asked at once, each part recorded and linked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.policy import DEFAULT_ACCESS
from ehis.runtime import RunningHub
from ehis.simulators import create_app
from ehis.simulators.faults import parse_rules
from ehis.simulators.world import world
from ehis.testing import hub_in_process

EMPLOYER = "1402345671"  # an active legal entity
CITIZEN = "5GXM4DZ"
FOREIGN_EXPIRED = ("ZTPDSRQ", "9966619221")  # a foreigner whose permit for this employer ended in 2016
FOREIGN_ELSEWHERE = ("HGZTMJ9", "8517424561")  # a foreigner with a valid permit for this other employer
ENTREPRENEUR = ("HMNNAC2", "6070040762")  # an individual entrepreneur and his VÖEN (ending in 2)
WORLD_DAY = "2025-01-01"  # the synthetic world's facts are stated at this date
APPLICANT = "P9TCV69"  # head of a household of four
PERIOD = {"from": "2024-01-01", "to": "2024-12-31"}


@pytest.fixture
def simulators(pki):
    return create_app(pki)


@pytest.fixture
async def hub(tmp_path: Path, pki, simulators) -> AsyncIterator[RunningHub]:
    async with hub_in_process(tmp_path, pki, simulators) as running:
        yield running


def as_(running: RunningHub, subsystem: str) -> BusClient:
    return BusClient(running.transport, requester=Requester(subsystem=subsystem, user="AZ1", purpose="check"),
                     default_timeout=10)


def prefill(running: RunningHub, voen: str, fin: str, **more: str):
    return as_(running, "emek-muqavilesi").request(
        "emek.contract-prefill", {"employer_voen": voen, "employee_fin": fin, "on": WORLD_DAY, **more})


async def parts_of(running: RunningHub, request_id: str) -> list:
    return [r for r in await running.parts.log.search(LogQuery(limit=1000)) if r.parent_id == request_id]


# -- the employment-contract prefill ---------------------------------------------------------------


async def test_a_citizens_prefill_fills_every_field_and_refuses_only_the_ssn(hub) -> None:
    reply = await prefill(hub, EMPLOYER, CITIZEN)
    assert reply.status == "ok", reply.error
    data = reply.data
    person = world().person(CITIZEN)
    assert data["employee"]["fin"] == CITIZEN and data["employee"]["surname"] == person.surname
    assert data["employee"]["document"]["number"] == person.document.number
    employer = world().taxpayer(EMPLOYER)
    assert data["employer"]["name"] == employer.name and data["employer"]["sun"] == employer.sun
    assert data["permits"] == {"required": False, "residence": None, "residence_status": "not_required",
                               "work_permit": None, "work_permit_status": "not_required"}
    assert [r["field"] for r in data["refused"]] == ["employee.ssn"]
    parts = await parts_of(hub, reply.id)
    assert sorted(p.service for p in parts) == ["din.person", "vergiler.taxpayer"]
    assert all(p.signer and p.evidence for p in parts)
    assert {p.service for p in parts} == {part["service"] for part in data["parts"]}
    own = [r for r in await hub.parts.log.search(LogQuery(limit=100)) if r.request_id == reply.id]
    assert len(own) == 1 and own[0].service == "emek.contract-prefill" and own[0].subject == CITIZEN


async def test_a_foreigner_with_an_expired_permit_is_flagged(hub) -> None:
    fin, voen = FOREIGN_EXPIRED
    data = (await prefill(hub, voen, fin)).data
    assert data["permits"]["required"] and data["permits"]["work_permit_status"] == "expired"
    assert data["permits"]["work_permit"]["employer_voen"] == voen
    assert {p["service"] for p in data["parts"]} == {"vergiler.taxpayer", "din.person", "dmx.residence-permit",
                                                     "dmx.work-permit"}


async def test_a_permit_for_another_employer_is_flagged(hub) -> None:
    fin, theirs = FOREIGN_ELSEWHERE
    data = (await prefill(hub, EMPLOYER, fin)).data
    assert data["permits"]["work_permit_status"] == "other_employer"
    assert data["permits"]["work_permit"]["employer_voen"] == theirs
    valid = (await prefill(hub, theirs, fin)).data
    assert valid["permits"]["work_permit_status"] == "valid"


async def test_a_natural_person_employers_head_comes_from_internal_affairs(hub) -> None:
    head, voen = ENTREPRENEUR
    data = (await prefill(hub, voen, CITIZEN)).data
    assert data["employer"]["kind"] == "natural_person"
    assert data["employer"]["head"]["fin"] == head
    assert data["employer"]["head"]["document"]["number"] == world().person(head).document.number


async def test_fields_the_tax_authority_cannot_give_are_refused_with_the_reason(hub, simulators) -> None:
    simulators.state.faults.add(parse_rules({"kind": "http_503", "system": "vergiler"}))
    reply = await prefill(hub, EMPLOYER, CITIZEN)
    assert reply.status == "ok", reply.error
    refused = {r["field"]: r["reason"] for r in reply.data["refused"]}
    assert reply.data["employer"] is None
    for field in ("employer.name", "employer.voen", "employer.sun", "employer.legal_address",
                  "employer.actual_address", "employer.phones"):
        assert "unavailable" in refused[field]
    failed = next(p for p in reply.data["parts"] if p["service"] == "vergiler.taxpayer")
    assert failed["state"] == "failed" and failed["error_code"] == "unavailable"


async def test_without_the_employees_identity_the_prefill_is_an_error(hub, simulators) -> None:
    missing = await prefill(hub, EMPLOYER, "0AB12CD")
    assert missing.error is not None and missing.error.code == "not_found"
    simulators.state.faults.add(parse_rules({"kind": "http_503", "system": "din"}))
    down = await prefill(hub, EMPLOYER, "7HJK2LM")
    assert down.error is not None and down.error.code == "unavailable" and down.error.retryable


async def test_only_the_employment_register_may_ask_for_a_prefill(hub) -> None:
    reply = await as_(hub, "vemtas").request("emek.contract-prefill", {"employer_voen": EMPLOYER,
                                                                      "employee_fin": CITIZEN})
    assert reply.error is not None and reply.error.code == "forbidden"


async def test_a_part_the_caller_may_not_ask_is_not_asked(tmp_path: Path, pki, simulators) -> None:
    access = dict(DEFAULT_ACCESS) | {"emek-muqavilesi": ["emek.contract-prefill", "din.person"]}
    async with hub_in_process(tmp_path, pki, simulators, access=access) as running:
        reply = await prefill(running, EMPLOYER, CITIZEN)
    taxpayer = next(p for p in reply.data["parts"] if p["service"] == "vergiler.taxpayer")
    assert taxpayer["state"] == "failed" and taxpayer["error_code"] == "forbidden"
    assert reply.data["employer"] is None
    assert simulators.state.journal.entries("vergiler") == []  # never asked


# -- the household means test ------------------------------------------------------------------------


def means(running: RunningHub, fin: str = APPLICANT, timeout: float = 15):
    return as_(running, "vemtas").request("vemtas.means-test", {"fin": fin, **PERIOD}, timeout=timeout)


async def test_a_household_of_four_with_every_fact_of_every_member(hub) -> None:
    reply = await means(hub)
    assert reply.status == "ok", reply.error
    data = reply.data
    household = world().household(APPLICANT)
    assert [m["fin"] for m in data["members"]] == [fin for fin, _ in household.members]
    assert data["household"]["authority"].startswith("yih-") and data["incomplete"] == []
    for member in data["members"]:
        for fact in ("income", "real_estate", "land_plots", "vehicles", "border_crossings", "loans",
                     "electricity", "water", "gas", "idp_status", "enrolment"):
            part = member[fact]["part"]
            assert part["state"] in ("ok", "not_found"), (member["fin"], fact, part)
            if part["state"] == "ok" and fact != "loans":
                assert part["signed_by"] and len(part["evidence"]) == 64
    assert data["subsistence_minimum"]["data"]["year"] == 2024
    months = {m["month"] for m in data["members"][0]["income"]["data"]["months"]}
    assert months and all(m.startswith("2024-") for m in months)


async def test_every_part_is_its_own_record_linked_to_the_means_test(hub) -> None:
    reply = await means(hub)
    parts = await parts_of(hub, reply.id)
    members = len(reply.data["members"])
    # per member ten single-source facts and three bureaus; the subsistence minimum; the routing lookup and the household
    assert len(parts) == members * (10 + 3) + 1 + 2
    assert {p.parent_id for p in parts} == {reply.id} and len({p.request_id for p in parts}) == len(parts)
    assert all(p.subsystem == "vemtas" and p.purpose == "check" for p in parts)
    subjects = {p.subject for p in parts if p.service == "vergiler.income"}
    assert subjects == {m["fin"] for m in reply.data["members"]}


async def test_a_failing_source_is_listed_as_incomplete_and_the_rest_still_comes(hub, simulators) -> None:
    simulators.state.faults.add(parse_rules({"kind": "http_503", "system": "azersu"}))
    reply = await means(hub)
    assert reply.status == "ok", reply.error
    incomplete = reply.data["incomplete"]
    assert {(m["fact"], m["service"], m["error_code"]) for m in incomplete} == {("water", "azersu.consumption",
                                                                                "unavailable")}
    assert {m["fin"] for m in incomplete} == {m["fin"] for m in reply.data["members"]}
    assert all(m["electricity"]["part"]["state"] in ("ok", "not_found") for m in reply.data["members"])


async def test_without_the_household_the_means_test_is_an_error(hub, simulators) -> None:
    simulators.state.faults.add(parse_rules({"kind": "http_503", "system": "yih"}))
    reply = await means(hub)
    assert reply.error is not None and reply.error.code == "unavailable"
    assert "yih.household" in reply.error.message


async def test_a_part_out_of_time_leaves_the_others_intact(hub, simulators) -> None:
    simulators.state.faults.add(parse_rules({"kind": "hang", "system": "dsx"}))
    reply = await means(hub, timeout=3)
    assert reply.status == "ok", reply.error
    late = {(m["fact"], m["error_code"]) for m in reply.data["incomplete"]}
    assert late == {("border_crossings", "deadline_exceeded")}


async def test_two_means_tests_for_the_same_household_share_the_source_calls(hub, simulators) -> None:
    first, second = await asyncio.gather(means(hub), means(hub))
    assert first.status == second.status == "ok"
    asked = [e for e in simulators.state.journal.entries("emlak")]
    assert len(asked) == len(first.data["members"])  # one call per member, shared by both means tests
