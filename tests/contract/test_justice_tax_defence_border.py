"""edliyye.civil-acts, vergiler.income, mudafie.service-record, sshcdx.conscription-status and
dsx.border-crossings: their params, their mapping, and the rules that tie them to other sources.

Every answer here comes through the hub's own adapter from the simulators in process (signed,
bound to its request, validated against the contract, mapped into the canonical model). The
world (ehis.simulators.world) only picks the subjects and states what the sources must agree on;
the rules across sources are checked on what both sources' SOAP contracts say.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from ehis.errors import InvalidInput
from ehis.mapping.models import Person
from ehis.mapping.queries import FinPeriodQuery
from ehis.security.pki import Pki
from ehis.simulators import create_app
from ehis.simulators.world import REFERENCE_DATE, world
from ehis.simulators.world.dates import age_on
from ehis.sources import service as built
from ehis.sources.dsx.models import BorderCrossings
from ehis.sources.edliyye.models import CivilActs
from ehis.sources.mudafie.models import ServiceRecord
from ehis.sources.spec import DAY, HOUR, Service
from ehis.sources.sshcdx.models import ConscriptionStatus
from ehis.sources.vergiler.models import Income, Taxpayer
from tests.contract.support import CALLER, make_adapter

CIVIL, INCOME, SERVICE, CONSCRIPTION, BORDER = (
    "edliyye.civil-acts", "vergiler.income", "mudafie.service-record", "sshcdx.conscription-status",
    "dsx.border-crossings")
YEAR_2024 = {"from": "2024-01-01", "to": "2024-12-31"}


def spec(name: str) -> Service:
    found = built(name)
    assert found is not None, f"{name} is not built"
    return found


class Sources:
    """Asks any built service through the hub's adapter, reaching the simulators in process."""

    def __init__(self, pki: Pki, transport: httpx.AsyncBaseTransport):
        self.pki, self.transport = pki, transport

    async def ask(self, name: str, params: BaseModel | None = None, **values: Any) -> Any:
        service = spec(name)
        adapter, http = make_adapter(self.pki, service.system, self.transport)
        async with http:
            answer = await adapter.call(service, params or service.params.model_validate(values), CALLER, 5)
        return service.mapper(answer.body)

    async def person(self, fin: str) -> Person:
        return await self.ask("din.person", fin=fin)

    async def acts(self, fin: str) -> CivilActs:
        return await self.ask(CIVIL, fin=fin)


@pytest.fixture
def sources(pki: Pki) -> Sources:
    return Sources(pki, httpx.ASGITransport(app=create_app(pki)))


@pytest.fixture
def overlay() -> Iterator[None]:
    """The simulators' world with events registered by the test, back to the base world after."""
    world().reset_overlay()
    yield
    world().reset_overlay()


def people(count: int, keep: Callable[[str], bool] = lambda fin: True, first_unit: int = 0) -> list[str]:
    """The first `count` held FINs, by unit and slot, that `keep` accepts (deterministic)."""
    w, found = world(), []
    unit = first_unit
    while len(found) < count:
        for slot in range(8):
            fin = w.fin_at(unit, slot)
            if w.person(fin) is not None and keep(fin) and len(found) < count:
                found.append(fin)
        unit += 1
    return found


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# params ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [INCOME, BORDER])
def test_period_params_are_a_well_formed_fin_and_an_ordered_bounded_period(name: str) -> None:
    params = spec(name).params
    ok = params.model_validate({"fin": " ppq0h4c ", **YEAR_2024})
    assert ok.model_dump(by_alias=True) == {"fin": "PPQ0H4C", "from": day("2024-01-01"), "to": day("2024-12-31")}
    assert params.model_validate({"fin": "PPQ0H4C", "from": "2024-05-01", "to": "2024-05-01"})
    for bad in ({"fin": "PPQ0H4C", "from": "2024-12-31", "to": "2024-01-01"},  # reversed
                {"fin": "PPQ0H4C", "from": "2010-01-01", "to": "2024-12-31"},  # fifteen years
                {"fin": "PPQ0H4I", **YEAR_2024},  # no I in a FIN
                {"fin": "PPQ0H4C", "from": "2024-01-01"},  # no end
                {"fin": "PPQ0H4C", "from": "2024-01-01", "to": "someday"},
                {"fin": "PPQ0H4C", "unit": "tank", **YEAR_2024}):  # an unknown field
        with pytest.raises(ValidationError):
            params.model_validate(bad)


@pytest.mark.parametrize("name", [CIVIL, SERVICE, CONSCRIPTION])
def test_person_params_are_one_well_formed_fin(name: str) -> None:
    params = spec(name).params
    assert params.model_validate({"fin": " 23czrhz"}).model_dump() == {"fin": "23CZRHZ"}
    for bad in ({"fin": "23CZRH"}, {"fin": "23CZRHO"}, {}, {"fin": "23CZRHZ", "from": "2024-01-01"}):
        with pytest.raises(ValidationError):
            params.model_validate(bad)


def test_each_service_is_cached_as_long_as_its_data_lives_and_names_its_subject() -> None:
    ttl = {CIVIL: HOUR, INCOME: HOUR, SERVICE: DAY, CONSCRIPTION: DAY, BORDER: HOUR}
    for name, seconds in ttl.items():
        service = spec(name)
        assert (service.cache_ttl, service.subject, service.answer_subject) == (seconds, "fin", ("fin",))
        assert service.missing is not None and service.missing["fin"].startswith("0")


@pytest.mark.parametrize("name", [INCOME, BORDER])
async def test_the_source_refuses_a_reversed_period_itself(sources: Sources, name: str) -> None:
    """What the hub validates the source checks again: a reversed period is its signed InvalidInput."""
    reversed_period = FinPeriodQuery.model_construct(fin="PPQ0H4C", start=day("2024-12-31"), end=day("2024-01-01"))
    with pytest.raises(InvalidInput) as raised:
        await sources.ask(name, reversed_period)
    assert raised.value.source == spec(name).system and raised.value.evidence is not None


# mapping of known subjects -----------------------------------------------------------------------
async def test_civil_acts_map_the_registry_record(sources: Sources) -> None:
    fin = spec(CIVIL).example["fin"]
    answer = await sources.acts(fin)
    acts = world().civil_acts(fin)
    assert acts is not None and acts.birth is not None
    assert answer.fin == fin and answer.birth is not None
    assert (answer.birth.fin, answer.birth.number, answer.birth.date, answer.birth.registry_office) == (
        fin, acts.birth.number, acts.birth.date, acts.birth.registry_office)
    assert [(m.number, m.date, m.husband, m.wife) for m in answer.marriages] == [
        (a.number, a.date, a.subject, a.partner) for a in acts.marriages]
    assert [(d.number, d.date, d.registry_office) for d in answer.divorces] == [
        (a.number, a.date, a.registry_office) for a in acts.divorces]
    assert answer.divorces and answer.divorces[0].date > answer.marriages[0].date
    assert [c.fin for c in answer.children] == list(acts.children) and answer.children
    assert all(fin in (c.father, c.mother) for c in answer.children)
    assert answer.death is None
    assert answer.birth.number.startswith(f"AD-{answer.birth.date.year}-")
    assert answer.marriages[0].number.startswith("NK-") and answer.divorces[0].number.startswith("NP-")


async def test_a_foreigner_has_no_act_but_is_answered(sources: Sources) -> None:
    fin = people(1, lambda f: world().person(f).citizenship != "AZE" and world().person(f).death_date is None)[0]
    answer = await sources.acts(fin)
    assert answer == CivilActs(fin=fin, birth=None, marriages=[], divorces=[], death=None, children=[])


async def test_income_maps_every_month_and_employer(sources: Sources) -> None:
    example = spec(INCOME).example
    answer: Income = await sources.ask(INCOME, **example)
    rows = world().income(example["fin"], day(example["from"]), day(example["to"]))
    assert answer.fin == example["fin"] and len(answer.months) == len(rows) >= 12
    for line, row in zip(answer.months, rows, strict=True):
        assert (line.month, line.employer_voen, line.declared, line.withheld) == (
            f"{row.month:%Y-%m}", row.employer_voen, row.declared, row.withheld)
        assert line.withheld == (max(line.declared - 200, Decimal(0)) * Decimal("0.14")).quantize(Decimal("0.01"))
    assert len({line.employer_voen for line in answer.months}) == 2
    assert answer.model_dump(mode="json")["months"][0]["declared"] == str(rows[0].declared)  # no float


async def test_income_of_a_child_is_an_empty_answer(sources: Sources) -> None:
    child = people(1, lambda f: age_on(world().person(f).birth_date, REFERENCE_DATE) < 16)[0]
    assert await sources.ask(INCOME, fin=child, **YEAR_2024) == Income(fin=child, months=[])


async def test_service_record_maps_every_period(sources: Sources) -> None:
    fin = spec(SERVICE).example["fin"]
    answer: ServiceRecord = await sources.ask(SERVICE, fin=fin)
    record = world().service_record(fin)
    assert record is not None and answer.fin == fin
    assert [(p.start, p.end, p.unit_type, p.discharge_reason, p.combat) for p in answer.periods] == [
        (p.start, p.end, p.unit_type, p.discharge_reason, p.combat) for p in record.periods]
    assert answer.combat_veteran and [p.combat for p in answer.periods] == [False, True]
    assert answer.periods[1].start == dt.date(2020, 9, 28) and answer.periods[1].discharge_reason == "demobilisation"


async def test_someone_who_never_served_has_no_period(sources: Sources) -> None:
    woman = people(1, lambda f: world().person(f).sex == "F")[0]
    assert await sources.ask(SERVICE, fin=woman) == ServiceRecord(fin=woman, periods=[], combat_veteran=False)


async def test_conscription_status_maps_a_deferral(sources: Sources) -> None:
    fin = spec(CONSCRIPTION).example["fin"]
    answer: ConscriptionStatus = await sources.ask(CONSCRIPTION, fin=fin)
    status = world().conscription(fin)
    assert status is not None
    assert answer == ConscriptionStatus(fin=fin, status="deferred", reason="family", until=status.until,
                                        office=status.office)
    assert answer.until is not None and answer.until > REFERENCE_DATE and answer.office


def living(fin: str, sex: str, ages: range, citizen: bool = True) -> bool:
    p = world().person(fin)
    return (p is not None and p.death_date is None and p.sex == sex and (p.citizenship == "AZE") == citizen
            and age_on(p.birth_date, REFERENCE_DATE) in ages)


@pytest.mark.parametrize(("sex", "ages", "citizen"), [("M", range(36, 120), True), ("M", range(18), True),
                                                      ("F", range(18, 36), True), ("M", range(18, 36), False)],
                         ids=["older man", "boy", "woman of conscription age", "foreign man of conscription age"])
async def test_outside_the_register_the_answer_is_not_applicable(sources: Sources, sex: str, ages: range,
                                                                  citizen: bool) -> None:
    fin = people(1, lambda f: living(f, sex, ages, citizen))[0]
    answer = await sources.ask(CONSCRIPTION, fin=fin)
    assert answer == ConscriptionStatus(fin=fin, status="not_applicable")


async def test_a_registered_death_takes_a_man_out_of_the_register(sources: Sources, overlay: None) -> None:
    fin = spec(CONSCRIPTION).example["fin"]
    assert (await sources.ask(CONSCRIPTION, fin=fin)).status == "deferred"
    world().register_death(fin, dt.date(2024, 11, 3))
    assert await sources.ask(CONSCRIPTION, fin=fin) == ConscriptionStatus(fin=fin, status="not_applicable")


async def test_border_crossings_map_the_window(sources: Sources) -> None:
    example = spec(BORDER).example
    answer: BorderCrossings = await sources.ask(BORDER, **example)
    record = world().border_crossings(example["fin"], day(example["from"]), day(example["to"]))
    assert record is not None
    assert (answer.fin, answer.period.start, answer.period.end) == (example["fin"], day("2024-01-01"),
                                                                   day("2024-12-31"))
    assert [(c.date, c.checkpoint, c.direction.upper()) for c in answer.crossings] == [
        (c.date, c.checkpoint, c.direction) for c in record.crossings]
    assert [c.direction for c in answer.crossings] == ["exit", "entry", "exit", "entry"]
    assert answer.days_abroad == record.days_abroad == 42 and not answer.abroad_at_start


# cross-source rules ------------------------------------------------------------------------------
def parents_with_children(count: int) -> list[str]:
    acts = world().civil_acts
    return people(count, lambda f: bool((a := acts(f)) and a.children_births), first_unit=50)


async def test_children_in_birth_acts_are_persons_with_those_parents(sources: Sources) -> None:
    children = 0
    for parent in parents_with_children(6):
        for child_act in (await sources.acts(parent)).children:
            children += 1
            child = await sources.person(child_act.fin)
            assert child.birth_date == child_act.date
            own = (await sources.acts(child_act.fin)).birth
            assert own == child_act  # the same act, seen from the child's side
            assert parent in (own.father, own.mother)
            for linked in filter(None, (own.father, own.mother)):
                parent_record = await sources.person(linked)
                assert (parent_record.sex, linked) in (("male", own.father), ("female", own.mother))
                assert child_act in (await sources.acts(linked)).children
    assert children >= 6


async def test_a_marriage_act_is_the_same_from_both_sides(sources: Sources) -> None:
    fin = spec(CIVIL).example["fin"]
    answer = await sources.acts(fin)
    for act in answer.marriages + answer.divorces:
        other = act.wife if act.husband == fin else act.husband
        theirs = await sources.acts(other)
        assert act in theirs.marriages + theirs.divorces
        assert ((await sources.person(act.husband)).sex, (await sources.person(act.wife)).sex) == ("male", "female")


def income_lines_after(income: Income, death: dt.date) -> list[str]:
    return [line.month for line in income.months if line.month > f"{death:%Y-%m}"]


async def test_a_death_act_is_the_death_in_din_and_ends_income(sources: Sources) -> None:
    def died_at_work(fin: str) -> bool:
        """Dead, with a last job that ended at most 200 days before (so income is in the window)."""
        p, jobs = world().person(fin), world().employment(fin)
        return bool(p and p.death_date and jobs and jobs[-1].end and (p.death_date - jobs[-1].end).days < 200)

    checked = 0
    for fin in people(4, died_at_work):
        acts = await sources.acts(fin)
        assert acts.death is not None and acts.death.number.startswith(f"OL-{acts.death.date.year}-")
        assert (await sources.person(fin)).death_date == acts.death.date
        death = acts.death.date
        window = {"from": f"{death.year - 2}-01-01", "to": f"{death.year + 2}-12-31"}
        income: Income = await sources.ask(INCOME, fin=fin, **window)
        assert income.months, "worked until shortly before the death: the test must see income"
        assert income_lines_after(income, death) == []
        checked += 1
    assert checked == 4


async def test_a_registered_death_shows_in_din_and_stops_the_income(sources: Sources, overlay: None) -> None:
    w = world()
    fin = people(1, lambda f: bool((jobs := w.employment(f)) and jobs[-1].end is None and w.person(f).death_date is None
                                   and jobs[-1].start < dt.date(2022, 1, 1)))[0]
    window = {"from": "2023-01-01", "to": "2024-12-31"}
    before: Income = await sources.ask(INCOME, fin=fin, **window)
    assert len({line.month for line in before.months}) == 24
    death = dt.date(2023, 6, 15)
    w.register_death(fin, death)
    acts = await sources.acts(fin)
    assert acts.death is not None and acts.death.date == death
    assert (await sources.person(fin)).death_date == death
    after: Income = await sources.ask(INCOME, fin=fin, **window)
    assert income_lines_after(after, death) == [] and after.months
    june = next(line for line in before.months if line.month == "2023-06")
    assert after.months[-1].month == "2023-06" and after.months[-1].declared < june.declared  # half a month's pay


async def test_every_employer_in_income_is_an_active_legal_entity(sources: Sources) -> None:
    employers: set[str] = set()
    for fin in people(12, lambda f: bool(world().employment(f)), first_unit=20):
        income: Income = await sources.ask(INCOME, fin=fin, **{"from": "2020-01-01", "to": "2024-12-31"})
        employers.update(line.employer_voen for line in income.months)
    assert len(employers) >= 8
    for voen in sorted(employers):
        taxpayer: Taxpayer = await sources.ask("vergiler.taxpayer", voen=voen)
        assert (taxpayer.voen, taxpayer.kind, taxpayer.status) == (voen, "legal_entity", "active")


async def test_conscription_and_service_only_for_men_of_the_ages_the_world_says(sources: Sources) -> None:
    seen: Counter[str] = Counter()
    men = people(70, lambda f: world().person(f).sex == "M", first_unit=300)
    for fin in men + people(20, lambda f: world().person(f).sex == "F", first_unit=300):
        person = await sources.person(fin)
        status: ConscriptionStatus = await sources.ask(CONSCRIPTION, fin=fin)
        record: ServiceRecord = await sources.ask(SERVICE, fin=fin)
        age = age_on(person.birth_date, REFERENCE_DATE)
        concerned = person.sex == "male" and person.citizenship == "AZE" and 18 <= age <= 35
        assert (status.status != "not_applicable") == (concerned and person.death_date is None), fin
        seen[status.status] += 1
        if status.status != "not_applicable":
            assert (status.status == "served") == bool(record.periods)
            assert status.office and (status.until is not None) == (status.status == "deferred")
        if record.periods:
            seen["service record"] += 1
            assert person.sex == "male" and person.citizenship == "AZE"
            assert age_on(person.birth_date, record.periods[0].start) >= 18
            assert record.combat_veteran == any(p.combat for p in record.periods)
            last = record.periods[-1]
            assert last.end is None or person.death_date is None or last.end <= person.death_date
        else:
            assert not record.combat_veteran
    assert seen["not_applicable"] and seen["registered"] and seen["served"] and seen["service record"] >= 10


def documented_days_abroad(answer: BorderCrossings, death: dt.date | None) -> int:
    """dsx.xsd's rule over the answer alone: from abroadAtStart, an EXIT makes its day and the
    next ones abroad, an ENTRY its day and the next ones at home; no day after a death."""
    abroad, total = answer.abroad_at_start, 0
    crossings = list(answer.crossings)
    last = answer.period.end if death is None else min(answer.period.end, death)
    current = answer.period.start
    while current <= last:
        while crossings and crossings[0].date == current:
            abroad = crossings.pop(0).direction == "exit"
        total += abroad
        current += dt.timedelta(days=1)
    return total


def travel_windows(fin: str, rng: random.Random) -> list[dict[str, str]]:
    """Windows around the traveller's trips: one from inside a trip, one whole year, one at random."""
    trips = [c.date for c in world().border_crossings(fin, dt.date(2010, 1, 1), REFERENCE_DATE).crossings
             if c.direction == "EXIT"]
    inside = trips[len(trips) // 2] + dt.timedelta(days=1)
    start = dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(5300))
    windows = [(inside, inside + dt.timedelta(days=rng.randrange(30, 700))),
               (dt.date(2024, 1, 1), dt.date(2025, 6, 30)), (start, start + dt.timedelta(days=rng.randrange(1, 1500)))]
    return [{"from": a.isoformat(), "to": b.isoformat()} for a, b in windows]


async def test_days_abroad_is_the_documented_count_over_the_crossings_returned(sources: Sources) -> None:
    rng = random.Random(4)
    travellers = people(12, lambda f: len(world().border_crossings(f, dt.date(2010, 1, 1), REFERENCE_DATE).crossings)
                        >= 4, first_unit=100)
    started_abroad = counted = 0
    for fin in travellers:
        death = (await sources.person(fin)).death_date
        for window in travel_windows(fin, rng):
            answer: BorderCrossings = await sources.ask(BORDER, fin=fin, **window)
            assert all(answer.period.start <= c.date <= answer.period.end for c in answer.crossings)
            assert answer.days_abroad == documented_days_abroad(answer, death)
            started_abroad += answer.abroad_at_start
            counted += answer.days_abroad > 0
    assert started_abroad >= 3 and counted >= 12


async def test_days_abroad_stop_at_a_death_abroad(sources: Sources, overlay: None) -> None:
    w = world()
    fin = people(1, lambda f: w.person(f).death_date is None and any(
        c.direction == "EXIT" and c.date.month < 11 for c in w.border_crossings(f, dt.date(2023, 1, 1),
                                                                                 dt.date(2023, 12, 31)).crossings),
        first_unit=200)[0]
    left = next(c.date for c in w.border_crossings(fin, dt.date(2023, 1, 1), dt.date(2023, 12, 31)).crossings
                if c.direction == "EXIT" and c.date.month < 11)
    window = {"from": f"{left:%Y-%m}-01", "to": "2024-12-31"}
    w.register_death(fin, left + dt.timedelta(days=1))
    answer: BorderCrossings = await sources.ask(BORDER, fin=fin, **window)
    death = (await sources.person(fin)).death_date
    assert death == left + dt.timedelta(days=1)
    assert answer.crossings[-1].date == left and answer.crossings[-1].direction == "exit"
    assert answer.days_abroad == documented_days_abroad(answer, death)
    assert documented_days_abroad(answer, None) > answer.days_abroad  # counting on after the death would differ
    later: BorderCrossings = await sources.ask(BORDER, fin=fin, **{"from": "2024-01-01", "to": "2024-12-31"})
    assert later.crossings == [] and later.days_abroad == 0 and not later.abroad_at_start
