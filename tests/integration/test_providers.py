"""Sources that are several providers behind one contract, through the whole hub in one process:
the credit bureaus (asked together, merged, a failing one named) and the local executive
authorities (a household routed to the authority of the person's district)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.runtime import RunningHub
from ehis.simulators import create_app
from ehis.simulators.faults import parse_rules
from ehis.simulators.world import world
from ehis.sources import source
from ehis.sources.yih.simulator import example_for
from ehis.testing import hub_in_process

VEMTAS = Requester(subsystem="vemtas", user="AZ0000002", purpose="means test 2025/7")
BORROWER = "7HJK2LM"  # the world reports loans on this person to all three bureaus


@pytest.fixture
def simulators(pki):
    return create_app(pki, rng=random.Random(3))


@pytest.fixture
async def hub(tmp_path: Path, pki, simulators) -> AsyncIterator[RunningHub]:
    async with hub_in_process(tmp_path, pki, simulators) as running:
        yield running


def client(running: RunningHub) -> BusClient:
    return BusClient(running.transport, requester=VEMTAS, default_timeout=10)


async def parts_of(running: RunningHub, request_id: str) -> list:
    records = await running.parts.log.search(LogQuery(limit=100))
    return [r for r in records if r.parent_id == request_id]


# -- credit bureaus ----------------------------------------------------------------------------------


async def test_every_bureau_is_asked_and_loans_are_merged_with_their_bureaus(hub, simulators) -> None:
    reply = await client(hub).request("kb.credit-report", {"fin": BORROWER})
    assert reply.status == "ok", reply.error
    report = reply.data
    expected = {loan.id: set(loan.bureaus) for b in ("akb", "mkr", "fkb") for loan in world().loans(BORROWER, b)}
    assert {loan["loan_id"]: set(loan["reported_by"]) for loan in report["loans"]} == expected
    assert [b["bureau"] for b in report["bureaus"]] == ["akb", "mkr", "fkb"]
    assert all(b["answered"] and b["signed_by"].startswith(f"CN=kb-{b['bureau']},") and len(b["evidence"]) == 64
               for b in report["bureaus"])
    parts = await parts_of(hub, reply.id)
    assert sorted(p.endpoint for p in parts) == ["kb-akb", "kb-fkb", "kb-mkr"]
    assert all(p.outcome == "ok" and p.signer and p.evidence and p.subject == BORROWER for p in parts)
    assert sorted(e.system for e in simulators.state.journal.entries("kb")) == ["kb-akb", "kb-fkb", "kb-mkr"]


async def test_a_failing_bureau_is_named_and_the_others_loans_still_come(hub, simulators) -> None:
    simulators.state.faults.add(parse_rules({"kind": "http_503", "system": "kb-mkr"}))
    reply = await client(hub).request("kb.credit-report", {"fin": BORROWER})
    assert reply.status == "ok", reply.error
    by_bureau = {b["bureau"]: b for b in reply.data["bureaus"]}
    assert by_bureau["mkr"]["answered"] is False and by_bureau["mkr"]["error_code"] == "unavailable"
    assert by_bureau["akb"]["answered"] and by_bureau["fkb"]["answered"]
    others = {loan.id for b in ("akb", "fkb") for loan in world().loans(BORROWER, b)}
    assert {loan["loan_id"] for loan in reply.data["loans"]} == others
    assert all("mkr" not in loan["reported_by"] for loan in reply.data["loans"])
    failed = [p for p in await parts_of(hub, reply.id) if p.endpoint == "kb-mkr"]
    assert failed and failed[0].error_code == "unavailable"


async def test_a_caller_can_name_one_bureau(hub, simulators) -> None:
    reply = await client(hub).request("kb.credit-report", {"fin": BORROWER, "bureau": "fkb"})
    assert reply.status == "ok", reply.error
    assert [b["bureau"] for b in reply.data["bureaus"]] == ["fkb"]
    assert {e.system for e in simulators.state.journal.entries("kb")} == {"kb-fkb"}
    unknown = await client(hub).request("kb.credit-report", {"fin": BORROWER, "bureau": "nope"})
    assert unknown.error is not None and unknown.error.code == "invalid_input" and "akb" in unknown.error.message


async def test_when_no_bureau_answers_the_reply_says_which_failed(hub, simulators) -> None:
    simulators.state.faults.add(parse_rules({"kind": "http_503", "system": "kb"}))
    reply = await client(hub).request("kb.credit-report", {"fin": BORROWER}, timeout=3)
    assert reply.error is not None and reply.error.code == "unavailable"
    assert all(f"kb-{b} (unavailable)" in reply.error.message for b in ("akb", "mkr", "fkb"))


async def test_a_person_no_registry_holds_is_not_found_with_evidence(hub) -> None:
    reply = await client(hub).request("kb.credit-report", {"fin": "0AB12CD"})
    assert reply.error is not None and reply.error.code == "not_found"
    assert reply.meta.signed_by and reply.meta.signed_by.startswith("CN=kb-")


# -- local executive authorities ---------------------------------------------------------------------


@pytest.mark.parametrize("authority", list(source("yih").providers))
async def test_a_household_is_asked_of_the_authority_of_the_persons_district(hub, simulators, authority) -> None:
    fin = example_for(authority)["fin"]
    reply = await client(hub).request("yih.household", {"fin": fin})
    assert reply.status == "ok", reply.error
    assert reply.data["authority"] == authority
    assert reply.meta.signed_by.startswith(f"CN={authority},")
    assert fin in {m["fin"] for m in reply.data["members"]}
    assert [e.system for e in simulators.state.journal.entries() if e.outcome == "ok"] == ["din", authority]
    parts = await parts_of(hub, reply.id)
    assert sorted((p.service, p.endpoint) for p in parts) == [("din.person", None), ("yih.household", authority)]


async def test_two_persons_from_different_districts_reach_different_authorities(hub, simulators) -> None:
    first, second = example_for("yih-ba")["fin"], example_for("yih-ga")["fin"]
    for fin in (first, second):
        assert (await client(hub).request("yih.household", {"fin": fin})).status == "ok"
    asked = [e.system for e in simulators.state.journal.entries("yih")]
    assert asked == ["yih-ba", "yih-ga"]
    assert world().person(first).address.district_code != world().person(second).address.district_code


async def test_a_district_no_authority_serves_is_a_clear_error(tmp_path: Path, pki, simulators) -> None:
    only_baku = {"yih": {"providers": {"yih-ba": {"districts": ["AZ-BA"]}}}}  # and no default route
    async with hub_in_process(tmp_path, pki, simulators, sources=only_baku) as running:
        fin = example_for("yih-ga")["fin"]
        reply = await client(running).request("yih.household", {"fin": fin})
        assert reply.error is not None and reply.error.code == "not_served"
        assert "AZ-GA" in reply.error.message and not reply.error.retryable
        recorded = await running.parts.log.search(LogQuery(limit=10))
        assert {r.service for r in recorded} == {"yih.household", "din.person"}  # the lookup is recorded too


async def test_the_district_lookup_is_cached_like_any_din_person(hub, simulators) -> None:
    fin = example_for("yih-sm")["fin"]
    await client(hub).request("din.person", {"fin": fin})
    reply = await client(hub).request("yih.household", {"fin": fin})
    assert reply.status == "ok"
    assert len(simulators.state.journal.entries("din")) == 1  # the second din.person came from the cache


async def test_a_misrouted_request_is_refused_by_the_authority_as_out_of_district(tmp_path: Path, pki,
                                                                                   simulators) -> None:
    wrong = {"yih": {"providers": {"yih-ba": {"districts": ["AZ-GA"]}}}}  # Gəncə sent to Bakı's authority
    async with hub_in_process(tmp_path, pki, simulators, sources=wrong) as running:
        reply = await client(running).request("yih.household", {"fin": example_for("yih-ga")["fin"]})
    assert reply.error is not None and reply.error.code == "source_fault" and not reply.error.retryable
    assert "does not answer for district AZ-GA" in reply.error.message
