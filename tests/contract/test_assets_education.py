"""Assets and education through their SOAP contracts: din.vehicles, emlak.real-estate,
kend.land-plots, tehsil.enrolment and dim.exam-results, each checked against din.person (and
against each other) as the hub sees them: simulator and adapter in process, signed and verified.

The world (ehis.simulators.world) only picks whom to ask, deterministically; every fact asserted
comes back through a source's contract and the hub's mapper.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from itertools import islice
from typing import Any

import httpx
import pytest

from ehis.contracts import xroad
from ehis.errors import SignatureInvalid
from ehis.mapping.models import Person
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner
from ehis.simulators import create_app
from ehis.simulators.world import DISTRICTS_BY_CODE, REFERENCE_DATE, world
from ehis.simulators.world.dates import add_years, age_on
from ehis.simulators.world.places import BAKU_PLATES
from ehis.sources import service as built
from ehis.sources import source
from ehis.sources.dim.models import ExamResults
from ehis.sources.din.models import Vehicles
from ehis.sources.emlak.models import RealEstate
from ehis.sources.kend.models import LandPlots
from ehis.sources.tehsil.models import Enrolments
from tests.contract import support

TODDLER = "BNEDV5N"  # born 2023: a person every one of these registers knows nothing about
UNITS_WALKED = 400  # the first units of the world: a deterministic sample of a few thousand people


class Sources:
    """The hub's adapters to the simulated sources, one transport for all."""

    def __init__(self, pki: Pki, transport: httpx.AsyncBaseTransport):
        self.pki, self.transport = pki, transport

    async def ask(self, name: str, fin: str) -> Any:
        """The canonical answer of service `name` about `fin`."""
        service = built(name)
        assert service is not None, f"{name} is not built"
        adapter, http = support.make_adapter(self.pki, service.system, self.transport)
        async with http:
            answer = await adapter.call(service, support.params(service, {"fin": fin}), support.CALLER, 5)
        return service.mapper(answer.body)

    async def person(self, fin: str) -> Person:
        answer = await self.ask("din.person", fin)
        assert isinstance(answer, Person) and answer.fin == fin
        return answer


@pytest.fixture
def asgi(pki: Pki) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(pki))


@pytest.fixture
def sources(pki: Pki, asgi: httpx.ASGITransport) -> Sources:
    return Sources(pki, asgi)


def walk() -> Iterator[str]:
    """Every FIN of a person in the first units of the world, in order."""
    w = world()
    for unit in range(UNITS_WALKED):
        for slot in range(8):
            fin = w.fin_at(unit, slot)
            if w.person(fin) is not None:
                yield fin


def first(count: int, wanted: Callable[[str], Any]) -> list[str]:
    found = list(islice((fin for fin in walk() if wanted(fin)), count))
    assert len(found) == count, "the walk is too short for this sample"
    return found


def _deceased(fin: str) -> bool:
    return world().person(fin).death_date is not None  # type: ignore[union-attr]


def _in_city(fin: str) -> bool:
    return DISTRICTS_BY_CODE[world().person(fin).address.district_code].city  # type: ignore[union-attr]


# the mapping of known subjects --------------------------------------------------------------------
async def test_vehicles_of_a_known_owner(sources: Sources) -> None:
    fin = built("din.vehicles").example["fin"]  # type: ignore[union-attr]
    answer = await sources.ask("din.vehicles", fin)
    assert isinstance(answer, Vehicles) and answer.fin == fin
    assert [(v.make, v.model, v.year, v.plate, v.registered_on) for v in answer.vehicles] == [
        (v.make, v.model, v.year, v.plate, v.registration_date) for v in world().vehicles(fin)]
    assert len(answer.vehicles) == 2 and all(isinstance(v.year, int) for v in answer.vehicles)


async def test_real_estate_of_a_known_owner_keeps_exact_shares(sources: Sources) -> None:
    fin = built("emlak.real-estate").example["fin"]  # type: ignore[union-attr]
    answer = await sources.ask("emlak.real-estate", fin)
    assert isinstance(answer, RealEstate) and answer.fin == fin
    expected = [(p.kind, p.address.text, p.address.district_code, p.address.district_name, p.area_m2, p.share,
                 p.registry_number, p.registration_date) for p in world().real_estate(fin)]
    assert [(p.kind, p.address.text, p.address.district_code, p.address.district, p.area_m2, p.share,
             p.registry_number, p.registered_on) for p in answer.properties] == expected
    assert {(p.kind, p.share) for p in answer.properties} == {("apartment", Fraction(1, 2)),
                                                             ("non_residential", Fraction(1))}
    as_json = answer.model_dump(mode="json")  # what a caller receives and the cache keeps
    assert {p["share"] for p in as_json["properties"]} == {"1/2", "1"}
    assert RealEstate.model_validate(as_json) == answer


async def test_land_plots_of_a_known_holder(sources: Sources) -> None:
    fin = built("kend.land-plots").example["fin"]  # type: ignore[union-attr]
    answer = await sources.ask("kend.land-plots", fin)
    assert isinstance(answer, LandPlots) and answer.fin == fin
    assert [(p.district_code, p.district, p.area_ha, p.use, p.share, p.registry_number, p.registered_on)
            for p in answer.plots] == [
        (p.district_code, p.district_name, p.area_ha, p.use, p.share, p.registry_number, p.registration_date)
        for p in world().land_plots(fin)]
    assert len(answer.plots) == 3 and {p.share for p in answer.plots} == {Fraction(1, 2)}
    assert all(isinstance(p.area_ha, Decimal) for p in answer.plots)
    assert LandPlots.model_validate(answer.model_dump(mode="json")) == answer


async def test_enrolment_of_a_known_learner(sources: Sources) -> None:
    fin = built("tehsil.enrolment").example["fin"]  # type: ignore[union-attr]
    answer = await sources.ask("tehsil.enrolment", fin)
    assert isinstance(answer, Enrolments) and answer.fin == fin
    assert [(e.institution, e.level, e.full_time, e.start, e.expected_end, e.speciality)
            for e in answer.enrolments] == [
        (e.institution, e.level, e.full_time, e.start, e.expected_end, e.speciality) for e in world().enrolment(fin)]
    assert [e.level for e in answer.enrolments] == ["general", "bachelor", "master"]
    assert answer.enrolments[0].speciality is None and answer.enrolments[1].speciality


async def test_exam_results_of_a_known_candidate(sources: Sources) -> None:
    fin = built("dim.exam-results").example["fin"]  # type: ignore[union-attr]
    answer = await sources.ask("dim.exam-results", fin)
    assert isinstance(answer, ExamResults) and answer.fin == fin
    expected = [(x.exam, x.year, x.score, x.admission.institution if x.admission else None,
                 x.admission.speciality if x.admission else None) for x in world().exam_results(fin)]
    assert [(x.exam, x.year, x.score, x.admission.institution if x.admission else None,
             x.admission.speciality if x.admission else None) for x in answer.results] == expected
    assert len(answer.results) == 2 and all(x.admission is not None for x in answer.results)


async def test_a_candidate_who_was_not_admitted_has_a_result_without_admission(sources: Sources) -> None:
    fin = first(1, lambda f: any(x.admission is None for x in world().exam_results(f)))[0]
    answer = await sources.ask("dim.exam-results", fin)
    assert [x.admission for x in answer.results] == [None]
    assert answer.results[0].score == world().exam_results(fin)[0].score


@pytest.mark.parametrize("name", ["din.vehicles", "emlak.real-estate", "kend.land-plots", "tehsil.enrolment",
                                  "dim.exam-results"])
async def test_a_person_with_no_record_is_an_empty_answer_not_a_fault(sources: Sources, name: str) -> None:
    person = await sources.person(TODDLER)
    assert age_on(person.birth_date, REFERENCE_DATE) < 5
    answer = await sources.ask(name, TODDLER)
    assert answer.fin == TODDLER
    assert [value for key, value in answer if key != "fin"] == [[]]


# din.vehicles and din.person -----------------------------------------------------------------------
async def test_vehicle_owners_are_adults_in_the_person_registry_with_local_plates(sources: Sources) -> None:
    owners = first(15, lambda f: world().vehicles(f))
    for fin in owners:
        person = await sources.person(fin)  # exists: din.person answers rather than NotFound
        answer = await sources.ask("din.vehicles", fin)
        assert answer.vehicles, fin
        district = DISTRICTS_BY_CODE[person.address.district_code]
        regions = BAKU_PLATES if district.code == "AZ-BA" else (district.plate,)
        for car in answer.vehicles:
            assert car.registered_on >= add_years(person.birth_date, 18)
            assert car.registered_on.year >= car.year and car.registered_on < REFERENCE_DATE
            assert person.death_date is None or car.registered_on < person.death_date
            assert car.plate.split("-")[0] in regions, (fin, car.plate, district.code)


async def test_no_vehicle_is_registered_after_the_death_din_person_records(sources: Sources) -> None:
    fin = first(1, lambda f: len({v.registration_date.year for v in world().vehicles(f)}) == 2)[0]
    before = await sources.ask("din.vehicles", fin)
    died = dt.date(before.vehicles[1].registered_on.year, 1, 1)
    assert before.vehicles[0].registered_on < died <= before.vehicles[1].registered_on
    world().register_death(fin, died)
    try:
        assert (await sources.person(fin)).death_date == died
        after = await sources.ask("din.vehicles", fin)
        assert after.vehicles == before.vehicles[:1]
    finally:
        world().reset_overlay()


async def test_a_signed_vehicle_list_about_someone_else_is_refused(pki: Pki, asgi: httpx.ASGITransport) -> None:
    """The hub checks the `fin` a vehicle list names against the FIN it asked about."""
    service = built("din.vehicles")
    assert service is not None

    def other_owner(response: httpx.Response, body: bytes) -> httpx.Response:
        doc = support.unsigned(body)
        payload = doc.find(xroad.BODY)[0]
        payload.find(source("din").codec.qname("fin")).text = "0VH1CL5"  # well formed, and nobody's
        return support.replaced(response, xroad.serialize(EnvelopeSigner(pki.identity("din")).sign(doc)))

    adapter, http = support.make_adapter(pki, "din", support.Rewriting(asgi, other_owner))
    async with http:
        with pytest.raises(SignatureInvalid, match="another subject"):
            await adapter.call(service, support.params(service), support.CALLER, 5)


# emlak.real-estate and din.person ------------------------------------------------------------------
def _joint_home(fin: str) -> bool:
    w = world()
    person, family = w.person(fin), w.family(fin)
    return bool(person and person.sex == "M" and family and family.spouse
                and any(p.share == Fraction(1, 2) for p in w.real_estate(fin)))


async def test_a_couples_home_is_one_right_at_both_spouses_registered_address(sources: Sources) -> None:
    for husband in first(8, _joint_home):
        wife = world().family(husband).spouse  # type: ignore[union-attr]
        assert wife is not None
        homes = {}
        for fin in (husband, wife):
            answer = await sources.ask("emlak.real-estate", fin)
            person = await sources.person(fin)
            joint = [p for p in answer.properties if p.share == Fraction(1, 2)]
            assert len(joint) == 1, (fin, answer.properties)
            assert joint[0].kind in ("apartment", "house") and joint[0].address == person.address
            homes[fin] = joint[0]
        assert homes[husband] == homes[wife]  # the same registry number, address, area, date, and half each
        assert homes[husband].share + homes[wife].share == 1


async def test_a_home_is_registered_to_adults(sources: Sources) -> None:
    owners = first(10, lambda f: any(p.share == 1 and p.kind != "non_residential" for p in world().real_estate(f))
                   and world().person(f).birth_date.year >= 1985)  # type: ignore[union-attr]
    for fin in owners:
        person = await sources.person(fin)
        for prop in (await sources.ask("emlak.real-estate", fin)).properties:
            assert prop.registered_on >= add_years(person.birth_date, 18), (fin, prop)


# kend.land-plots and din.person --------------------------------------------------------------------
@pytest.mark.parametrize("city", [False, True], ids=["rayon", "city"])
async def test_land_plots_lie_where_the_holder_is_registered(sources: Sources, city: bool) -> None:
    """A rayon dweller's plots are in their own rayon; a city dweller's in some rural district."""
    holders = first(8 if not city else 4, lambda f: _in_city(f) is city and world().land_plots(f))
    for fin in holders:
        person = await sources.person(fin)
        answer = await sources.ask("kend.land-plots", fin)
        assert answer.plots, fin
        for plot in answer.plots:
            if city:
                assert not DISTRICTS_BY_CODE[plot.district_code].city, (fin, plot)
            else:
                assert (plot.district_code, plot.district) == (person.address.district_code, person.address.district)
            assert plot.registered_on >= add_years(person.birth_date, 18)
            assert plot.share in (Fraction(1), Fraction(1, 2)) and plot.area_ha > 0


# tehsil.enrolment, dim.exam-results and din.person -------------------------------------------------
async def test_enrolment_only_at_plausible_ages(sources: Sources) -> None:
    learners = first(25, lambda f: world().enrolment(f)) + first(4, lambda f: world().enrolment(f) and _deceased(f))
    levels = set()
    for fin in learners:
        person = await sources.person(fin)
        for e in (await sources.ask("tehsil.enrolment", fin)).enrolments:
            levels.add(e.level)
            age = age_on(person.birth_date, e.start)
            assert age == 6 if e.level == "general" else age >= 17, (fin, e, person.birth_date)
            assert e.start < e.expected_end and e.start < REFERENCE_DATE
            assert person.death_date is None or e.start < person.death_date
    assert levels >= {"general", "bachelor"}


async def test_grown_up_children_went_to_school_where_their_mother_lives(sources: Sources) -> None:
    """Someone who moved to another district went to school in the family's: the mother's in din."""
    def moved_away(fin: str) -> bool:
        w = world()
        mother = w.family(fin).mother  # type: ignore[union-attr]
        return bool(mother and w.person(mother).address.district_code  # type: ignore[union-attr]
                    != w.person(fin).address.district_code  # type: ignore[union-attr]
                    and any(e.level == "general" for e in w.enrolment(fin)))

    for fin in first(5, moved_away):
        mother = await sources.person(world().family(fin).mother)  # type: ignore[arg-type, union-attr]
        school = next(e for e in (await sources.ask("tehsil.enrolment", fin)).enrolments if e.level == "general")
        assert school.institution.startswith(mother.address.district), (fin, school.institution, mother.address)
        assert not school.institution.startswith((await sources.person(fin)).address.district)


async def test_exam_takers_were_17_and_admissions_match_enrolments(sources: Sources) -> None:
    candidates = first(15, lambda f: world().exam_results(f))
    admitted = refused = 0
    for fin in candidates:
        person = await sources.person(fin)
        studies = {(e.institution, e.speciality, e.start.year) for e in
                   (await sources.ask("tehsil.enrolment", fin)).enrolments if e.level in ("bachelor", "master")}
        for x in (await sources.ask("dim.exam-results", fin)).results:
            assert age_on(person.birth_date, dt.date(x.year, 7, 1)) >= 17, (fin, x, person.birth_date)
            assert x.year < REFERENCE_DATE.year
            if x.admission is None:
                refused += 1
                assert not any(year == x.year for *_, year in studies)
            else:
                admitted += 1
                assert (x.admission.institution, x.admission.speciality, x.year) in studies, (fin, x, studies)
    assert admitted and refused

