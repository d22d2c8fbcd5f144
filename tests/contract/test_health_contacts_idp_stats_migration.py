"""The rules of sehiyye, nrytn, qmkdk, dsk and dmx: their params, their answers for known
subjects, and the rules that link them to other sources, each read through the sources' SOAP
contracts (simulators in process, the hub's adapter), never from the world directly except to
state what the simulated source holds.

The contract every source meets (signatures, faults, hostile answers) is tests/contract/base.py.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.errors import InvalidInput, NotFound
from ehis.security.pki import Pki
from ehis.simulators import create_app
from ehis.simulators.world import SUBSISTENCE_GROUPS, world
from ehis.sources import service as built
from ehis.sources.dsk.models import (
    AverageWageQuery,
    PopulationGroup,
    SubsistenceMinimumQuery,
)
from ehis.sources.spec import Service
from ehis.testing import hub_in_process
from tests.contract.support import CALLER, make_adapter

# Subjects the simulated sources hold (found once in the world, see each source's `example`).
TWO_REFERRALS = "E4GMWW2"  # a sanatorium and a disability assessment referral
CHILD_WITH_REFERRALS = "5CWH154"
TWO_NUMBERS = "P49HH90"
A_CHILD = "LG8LP9R"  # no number, no referral
IDP_FAMILY = "N1V96RR"  # an IDP from Xocavənd with four other living family members
REFUGEE_FAMILY = "L4SKCQW"
NO_STATUS_CITIZEN = "E4QR627"  # a citizen without a status, permit or referral
FOREIGN_WORKER = "PVEN0YR"  # a temporary residence permit and six work permits
PERMANENT_RESIDENT = "T6M8LPU"  # needs no work permit, holds none
FOREIGN_PENSIONER = "RM8TAR1"  # a temporary permit, never worked
NOBODY = "0ZX9K2M"  # well formed, held by no registry


def fins(count: int, seed: int) -> list[str]:
    """Random well-formed FINs that are not held by nobody (none starts with 0)."""
    rng = random.Random(seed)
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return ["".join(rng.choices(alphabet, k=7)) for _ in range(count)]


@pytest.fixture
def asgi(pki: Pki) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(pki))


class Ask:
    """One source call through the hub's adapter: the mapped canonical model, or the typed error."""

    def __init__(self, pki: Pki, transport: httpx.AsyncBaseTransport):
        self.pki, self.transport = pki, transport

    async def raw(self, service: Service, params: BaseModel) -> BaseModel:
        adapter, http = make_adapter(self.pki, service.system, self.transport)
        async with http:
            answer = await adapter.call(service, params, CALLER, 5)
        return service.mapper(answer.body)

    async def __call__(self, name: str, **values: Any) -> Any:
        service = built(name)
        assert service is not None, f"{name} is not built"
        return await self.raw(service, service.params.model_validate(values))


@pytest.fixture
def ask(pki: Pki, asgi: httpx.ASGITransport) -> Ask:
    return Ask(pki, asgi)


# -- params ---------------------------------------------------------------------------------------

PERSON_SERVICES = ("sehiyye.referrals", "nrytn.mobile-numbers", "qmkdk.idp-status", "dmx.residence-permit",
                   "dmx.work-permit")


@pytest.mark.parametrize("name", PERSON_SERVICES)
def test_person_services_take_a_fin_and_refuse_anything_else(name: str) -> None:
    service = built(name)
    assert service is not None and service.subject == "fin" and service.answer_subject == ("fin",)
    assert service.params.model_validate({"fin": " e4gmww2 "}).fin == "E4GMWW2"  # type: ignore[attr-defined]
    for bad in ({"fin": "E4GMWW"}, {"fin": "E4GMWWO"}, {}, {"fin": "E4GMWW2", "year": 2024}):
        with pytest.raises(ValidationError):
            service.params.model_validate(bad)


def test_the_population_groups_are_the_worlds() -> None:
    assert tuple(PopulationGroup) == SUBSISTENCE_GROUPS


@pytest.mark.parametrize("values", [
    {"year": 1990}, {"year": 2100}, {"year": 24}, {"year": "last"}, {"year": 2024, "group": "pets"},
    {"year": 2024, "group": "TOTAL"}, {"year": 2024, "fin": "E4GMWW2"}, {},
])
def test_subsistence_params_refuse_years_out_of_range_and_unknown_groups(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SubsistenceMinimumQuery.model_validate(values)


def test_subsistence_params_bounds_and_default_group() -> None:
    assert SubsistenceMinimumQuery.model_validate({"year": 1991}).group is PopulationGroup.TOTAL
    assert SubsistenceMinimumQuery.model_validate({"year": 2099, "group": "child"}).group is PopulationGroup.CHILD


@pytest.mark.parametrize("values", [
    {"year": 2024, "month": 0}, {"year": 2024, "month": 13}, {"year": 2024}, {"month": 6},
    {"year": 1990, "month": 6}, {"year": 2100, "month": 6}, {"year": 2024, "month": 6, "group": "total"},
])
def test_average_wage_params_refuse_months_and_years_out_of_range(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AverageWageQuery.model_validate(values)


def test_average_wage_params_take_every_month() -> None:
    assert [AverageWageQuery(year=2024, month=m).month for m in range(1, 13)] == list(range(1, 13))


def test_cache_lifetimes_and_subjects() -> None:
    lifetimes = {name: built(name).cache_ttl for name in (*PERSON_SERVICES, "dsk.subsistence-minimum",  # type: ignore[union-attr]
                                                          "dsk.average-wage")}
    assert lifetimes == {"sehiyye.referrals": None, "nrytn.mobile-numbers": 3600.0, "qmkdk.idp-status": 86400.0,
                         "dmx.residence-permit": 3600.0, "dmx.work-permit": 3600.0,
                         "dsk.subsistence-minimum": 86400.0, "dsk.average-wage": 86400.0}
    for name in ("dsk.subsistence-minimum", "dsk.average-wage"):
        service = built(name)
        assert service is not None and service.subject is None and service.answer_subject is None


# -- sehiyye.referrals ----------------------------------------------------------------------------

async def test_referrals_of_a_known_patient_are_mapped(ask: Ask) -> None:
    answer = await ask("sehiyye.referrals", fin=TWO_REFERRALS)
    assert answer.fin == TWO_REFERRALS
    assert [(r.number, r.kind, r.institution, r.icd10, r.issued_on, r.valid_until) for r in answer.referrals] == [
        (r.number, r.kind, r.institution, r.icd10, r.date, r.valid_until) for r in world().referrals(TWO_REFERRALS)]
    assert {r.kind for r in answer.referrals} == {"sanatorium", "disability_assessment"}
    for r in answer.referrals:
        assert (r.valid_until - r.issued_on).days == (90 if r.kind == "sanatorium" else 30)


async def test_a_childs_referrals_are_disability_assessments(ask: Ask) -> None:
    answer = await ask("sehiyye.referrals", fin=CHILD_WITH_REFERRALS)
    assert answer.referrals and {r.kind for r in answer.referrals} == {"disability_assessment"}


async def test_no_referral_is_an_empty_answer_and_nobody_is_not_found(ask: Ask) -> None:
    assert (await ask("sehiyye.referrals", fin=A_CHILD)).referrals == []
    with pytest.raises(NotFound):
        await ask("sehiyye.referrals", fin=NOBODY)


# -- nrytn.mobile-numbers -------------------------------------------------------------------------

async def test_mobile_numbers_of_a_known_subscriber_are_mapped(ask: Ask) -> None:
    answer = await ask("nrytn.mobile-numbers", fin=TWO_NUMBERS)
    assert answer.fin == TWO_NUMBERS
    assert [(n.number, n.operator, n.registered_on) for n in answer.numbers] == [
        (n.number, n.operator, n.registered) for n in world().mobile_numbers(TWO_NUMBERS)]
    assert len(answer.numbers) == 2
    assert [n.registered_on for n in answer.numbers] == sorted(n.registered_on for n in answer.numbers)


async def test_a_child_has_no_number_and_nobody_is_not_found(ask: Ask) -> None:
    assert (await ask("nrytn.mobile-numbers", fin=A_CHILD)).numbers == []
    with pytest.raises(NotFound):
        await ask("nrytn.mobile-numbers", fin=NOBODY)


# -- qmkdk.idp-status -----------------------------------------------------------------------------

async def test_an_idp_status_is_mapped_with_the_other_family_members(ask: Ask) -> None:
    answer = await ask("qmkdk.idp-status", fin=IDP_FAMILY)
    held = world().idp_status(IDP_FAMILY)
    assert held is not None
    assert (answer.fin, answer.status, answer.region_of_origin, answer.since) == (
        IDP_FAMILY, "idp", "Xocavənd", held.since)
    assert answer.temporary_residence.district_code == held.temporary_residence.district_code
    assert answer.temporary_residence.text == held.temporary_residence.text
    assert set(answer.family_members) == set(held.family_members) - {IDP_FAMILY}
    assert len(answer.family_members) == 4


async def test_a_refugee_comes_from_armenia(ask: Ask) -> None:
    answer = await ask("qmkdk.idp-status", fin=REFUGEE_FAMILY)
    assert answer.status == "refugee" and answer.region_of_origin.startswith("Ermənistan, ")
    assert answer.since < date(1991, 1, 1)


async def test_no_status_is_an_answer_without_details_and_nobody_is_not_found(ask: Ask) -> None:
    answer = await ask("qmkdk.idp-status", fin=NO_STATUS_CITIZEN)
    assert answer.model_dump() == {"fin": NO_STATUS_CITIZEN, "status": "none", "region_of_origin": None,
                                   "since": None, "temporary_residence": None, "family_members": []}
    foreigner = await ask("qmkdk.idp-status", fin=FOREIGN_WORKER)
    assert foreigner.status == "none"
    with pytest.raises(NotFound):
        await ask("qmkdk.idp-status", fin=NOBODY)


# -- dsk ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("group", list(PopulationGroup))
async def test_subsistence_minimum_of_every_group(ask: Ask, group: PopulationGroup) -> None:
    answer = await ask("dsk.subsistence-minimum", year=2024, group=group.value)
    assert (answer.year, answer.group) == (2024, group)
    assert answer.amount == world().subsistence_minimum(2024, group.value)
    assert answer.amount.as_tuple().exponent == -2 and answer.amount > 0


async def test_average_wage_of_a_month(ask: Ask) -> None:
    june, december = await ask("dsk.average-wage", year=2024, month=6), await ask("dsk.average-wage", year=2024,
                                                                                   month=12)
    assert (june.year, june.month, june.amount) == (2024, 6, world().average_wage(2024, 6))
    assert december.amount > june.amount > Decimal(0)  # the December bonuses
    assert june.model_dump(mode="json")["amount"] == format(june.amount, "f")  # no cent lost to a float


@pytest.mark.parametrize(("name", "values"), [
    ("dsk.subsistence-minimum", {"year": 2004}), ("dsk.subsistence-minimum", {"year": 2027, "group": "child"}),
    ("dsk.average-wage", {"year": 1999, "month": 12}), ("dsk.average-wage", {"year": 2027, "month": 1}),
])
async def test_a_year_outside_the_tables_is_not_found(ask: Ask, name: str, values: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        await ask(name, **values)


async def test_the_statistics_source_refuses_a_bad_month_or_group_itself(ask: Ask) -> None:
    """What the params refuse, the source refuses again with its typed fault."""
    wage = built("dsk.average-wage")
    assert wage is not None
    with pytest.raises(InvalidInput) as raised:
        await ask.raw(wage, AverageWageQuery.model_construct(year=2024, month=13))
    assert raised.value.evidence is not None
    minimum = built("dsk.subsistence-minimum")
    assert minimum is not None
    pets = dataclasses.replace(minimum, request=lambda params: {"year": 2024, "group": "PETS"})
    with pytest.raises(InvalidInput):
        await ask.raw(pets, SubsistenceMinimumQuery(year=2024))


# -- dmx ------------------------------------------------------------------------------------------

async def test_a_foreign_workers_permits_are_mapped(ask: Ask) -> None:
    residence = await ask("dmx.residence-permit", fin=FOREIGN_WORKER)
    permit = world().residence_permit(FOREIGN_WORKER)
    assert permit is not None and residence.fin == FOREIGN_WORKER
    assert (residence.permit.series, residence.permit.number, residence.permit.kind) == ("MI", permit.number,
                                                                                        "temporary")
    assert (residence.permit.valid.start, residence.permit.valid.end) == (permit.start, permit.end)
    work = await ask("dmx.work-permit", fin=FOREIGN_WORKER)
    assert [(p.number, p.employer_voen, p.position, p.valid.start, p.valid.end) for p in work.permits] == [
        (p.number, p.employer_voen, p.position, p.start, p.end) for p in world().work_permits(FOREIGN_WORKER)]
    assert len(work.permits) == 6
    for earlier, later in zip(work.permits, work.permits[1:]):
        assert earlier.valid.end < later.valid.start  # consecutive, oldest first


async def test_foreigners_without_work_permits(ask: Ask) -> None:
    permanent = await ask("dmx.residence-permit", fin=PERMANENT_RESIDENT)
    assert permanent.permit.kind == "permanent"
    assert (await ask("dmx.work-permit", fin=PERMANENT_RESIDENT)).permits == []
    pensioner = await ask("dmx.residence-permit", fin=FOREIGN_PENSIONER)
    assert pensioner.permit.kind == "temporary"
    assert (await ask("dmx.work-permit", fin=FOREIGN_PENSIONER)).permits == []


async def test_a_citizen_has_no_permit_which_is_not_the_same_as_nobody(ask: Ask) -> None:
    """The employment-contract prefill flags "missing permit" from an answer; NotFound stays "no such person"."""
    residence = await ask("dmx.residence-permit", fin=NO_STATUS_CITIZEN)
    work = await ask("dmx.work-permit", fin=NO_STATUS_CITIZEN)
    assert (residence.fin, residence.permit) == (NO_STATUS_CITIZEN, None)
    assert (work.fin, work.permits) == (NO_STATUS_CITIZEN, [])
    for name in ("dmx.residence-permit", "dmx.work-permit"):
        with pytest.raises(NotFound):
            await ask(name, fin=NOBODY)


# -- rules across sources -------------------------------------------------------------------------

async def test_only_foreign_citizens_have_permits_and_their_employers_are_taxpayers(ask: Ask) -> None:
    foreigners = citizens = 0
    employers: set[str] = set()
    for fin in [*fins(120, seed=9), FOREIGN_WORKER, PERMANENT_RESIDENT, FOREIGN_PENSIONER]:
        person = await ask("din.person", fin=fin)
        residence = await ask("dmx.residence-permit", fin=fin)
        work = await ask("dmx.work-permit", fin=fin)
        if person.citizenship == "AZE":
            citizens += 1
            assert residence.permit is None and work.permits == []
            continue
        foreigners += 1
        assert residence.permit is not None
        assert (person.document.type, person.document.number) == ("RESIDENCE_PERMIT", residence.permit.number)
        if residence.permit.kind == "permanent":
            assert work.permits == []
        employers.update(p.employer_voen for p in work.permits)
    assert citizens > 80 and foreigners >= 8
    assert len(employers) >= 5
    for voen in sorted(employers):
        taxpayer = await ask("vergiler.taxpayer", voen=voen)
        assert taxpayer.voen == voen and taxpayer.kind == "legal_entity"


async def test_idp_family_members_are_living_citizens_holding_the_same_status(ask: Ask) -> None:
    holders = [fin for fin in (IDP_FAMILY, REFUGEE_FAMILY, *fins(60, seed=13))
               if (await ask("qmkdk.idp-status", fin=fin)).status != "none"]
    assert len(holders) >= 4
    members = 0
    for fin in holders:
        status = await ask("qmkdk.idp-status", fin=fin)
        assert fin not in status.family_members
        assert status.temporary_residence == (await ask("din.person", fin=fin)).address
        for member in status.family_members:
            members += 1
            person = await ask("din.person", fin=member)  # NotFound would fail the test
            assert person.fin == member and person.citizenship == "AZE" and person.death_date is None
            theirs = await ask("qmkdk.idp-status", fin=member)
            assert (theirs.status, theirs.region_of_origin) == (status.status, status.region_of_origin)
            assert fin in theirs.family_members
    assert members >= 8


# -- through the hub ------------------------------------------------------------------------------

def requester(subsystem: str) -> Requester:
    return Requester(subsystem=subsystem, user="AZ0000001", purpose="a test of the statistics")


async def test_statistics_through_the_hub_are_logged_without_a_subject(tmp_path: Path, pki: Pki) -> None:
    app = create_app(pki)
    async with hub_in_process(tmp_path, pki, app) as hub:
        calls = [("vemtas", "dsk.subsistence-minimum", {"year": 2024, "group": "child"}),
                 ("pensiya", "dsk.average-wage", {"year": 2023, "month": 3}),
                 ("pensiya", "dsk.average-wage", {"year": 1995, "month": 3}),
                 ("vemtas", "qmkdk.idp-status", {"fin": IDP_FAMILY.lower()})]
        replies = [await BusClient(hub.transport, requester=requester(who), default_timeout=10).request(name, values)
                   for who, name, values in calls]
        assert [r.status for r in replies] == ["ok", "ok", "error", "ok"]
        assert replies[0].data == {"year": 2024, "group": "child",
                                   "amount": str(world().subsistence_minimum(2024, "child"))}
        assert replies[2].error is not None and replies[2].error.code == "not_found"
        assert hub.parts.log is not None
        records = await hub.parts.log.search(LogQuery(limit=10))
        subjects = sorted((r.service, r.subject or "") for r in records)
        assert subjects == [("dsk.average-wage", ""), ("dsk.average-wage", ""), ("dsk.subsistence-minimum", ""),
                            ("qmkdk.idp-status", IDP_FAMILY)]
        assert all(r.signer and "CN=dsk," in r.signer for r in records if r.source == "dsk")


async def test_referrals_are_never_cached_and_idp_statuses_are(tmp_path: Path, pki: Pki) -> None:
    app = create_app(pki)
    async with hub_in_process(tmp_path, pki, app) as hub:
        for who, name in (("tseras", "sehiyye.referrals"), ("sosial-odenisler", "qmkdk.idp-status")):
            client = BusClient(hub.transport, requester=requester(who), default_timeout=10)
            replies = [await client.request(name, {"fin": IDP_FAMILY}) for _ in range(2)]
            assert [r.status for r in replies] == ["ok", "ok"]
        assert len(app.state.journal.entries("sehiyye")) == 2
        assert len(app.state.journal.entries("qmkdk")) == 1
