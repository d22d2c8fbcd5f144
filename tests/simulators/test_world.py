"""The linked synthetic world: one FIN tells one story in every facet (ehis.simulators.world)."""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction

import pytest

from ehis.simulators.world import (
    ALPHABET,
    BUREAUS,
    DISTRICTS,
    DISTRICTS_BY_CODE,
    REFERENCE_DATE,
    UNITS,
    UTILITY_KINDS,
    World,
    days_abroad,
    world,
)
from ehis.simulators.world.dates import add_years, age_on, month_end, months
from ehis.simulators.world.ids import FIN_SPACE, Permutation, fin_to_index, index_to_fin
from ehis.simulators.world.migration import arrival
from ehis.simulators.world.people import gendered

LEGAL_ENTITY = "legal_entity"
YEAR_2024 = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))


def random_fins(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(7)) for _ in range(count)]


@pytest.fixture(scope="module")
def w() -> World:
    return World()


@pytest.fixture(scope="module")
def sample(w: World) -> list[str]:
    """Held FINs of random people plus every held member of their units (to reach relatives)."""
    fins: dict[str, None] = {}
    for fin in random_fins(1500, seed=11):
        if w.person(fin) is not None:
            fins.update(dict.fromkeys(w.unit_fins(fin)))
    return list(fins)


def years_between(older: dt.date, younger: dt.date) -> int:
    return age_on(older, younger)


# identity space ----------------------------------------------------------------------------------
def test_fin_index_round_trips() -> None:
    for fin in random_fins(2000) + ["0000000", "ZZZZZZZ"]:
        assert index_to_fin(fin_to_index(fin)) == fin
    assert fin_to_index("ZZZZZZZ") == FIN_SPACE - 1


def test_the_permutation_round_trips_and_is_a_bijection_on_a_sample(w: World) -> None:
    fins = set(random_fins(40_000, seed=3))
    places = {fin: w.locate(fin) for fin in fins}
    assert len(set(places.values())) == len(fins)  # injective on the sample
    for fin, (unit, slot) in places.items():
        assert 0 <= unit < UNITS and 0 <= slot < 8
        assert w.fin_at(unit, slot) == fin
    rng = random.Random(5)
    for _ in range(5000):
        unit, slot = rng.randrange(UNITS), rng.randrange(8)
        assert w.locate(w.fin_at(unit, slot)) == (unit, slot)


def test_a_small_permutation_is_a_full_bijection() -> None:
    perm = Permutation(1000, b"test")
    images = [perm.forward(i) for i in range(1000)]
    assert sorted(images) == list(range(1000))
    assert all(perm.inverse(perm.forward(i)) == i for i in range(1000))
    assert images != list(range(1000))


def test_a_unit_lists_its_members(w: World, sample: list[str]) -> None:
    for fin in sample[:300]:
        unit, _ = w.locate(fin)
        members = w.unit_members(unit)
        assert fin in members and members == w.unit_fins(fin)
        assert all(w.locate(f)[0] == unit and not f.startswith("0") for f in members)


def test_fins_starting_with_zero_have_no_person_and_no_facets(w: World) -> None:
    for fin in ("0ABCDEF", "0000000", "0ZZZZZZ"):
        assert w.person(fin) is None and w.member(fin) is None
        for single in (w.family, w.household, w.civil_acts, w.residence_permit, w.conscription,
                       w.service_record, w.idp_status, w.voen_of_entrepreneur, w.authority):
            assert single(fin) is None
        for listing in (w.employment, w.vehicles, w.real_estate, w.land_plots, w.work_permits, w.enrolment,
                        w.exam_results, w.referrals, w.mobile_numbers):
            assert listing(fin) == ()
        assert w.income(fin, *YEAR_2024) == ()
        assert w.border_crossings(fin, *YEAR_2024) is None
        assert all(w.loans(fin, b) == () for b in BUREAUS)
        assert all(w.utilities(fin, k) is None and w.consumption(fin, k, *YEAR_2024) is None
                   for k in UTILITY_KINDS)


@pytest.mark.parametrize("fin", ["ABC", "5GXM4DZ8", "5GXM4DI", "5GXM4DO", "5GXM-DZ", "", "5GXM4DƏ"])
def test_malformed_fins_raise(w: World, fin: str) -> None:
    for facet in (w.person, w.family, w.household, w.civil_acts, w.employment, w.vehicles, w.conscription,
                  w.mobile_numbers, w.idp_status, w.locate):
        with pytest.raises(ValueError):
            facet(fin)
    with pytest.raises(ValueError):
        w.income(fin, *YEAR_2024)


def test_input_is_trimmed_and_upper_cased(w: World) -> None:
    assert w.person(" 5gxm4dz ") == w.person("5GXM4DZ")


# determinism -------------------------------------------------------------------------------------
def facets_of(w: World, fin: str) -> tuple[object, ...]:
    return (w.person(fin), w.family(fin), w.household(fin), w.civil_acts(fin), w.employment(fin),
            w.income(fin, dt.date(2023, 1, 1), dt.date(2024, 12, 1)), w.vehicles(fin), w.real_estate(fin),
            w.land_plots(fin), tuple(w.utilities(fin, k) for k in UTILITY_KINDS), w.residence_permit(fin),
            w.work_permits(fin), w.border_crossings(fin, dt.date(2015, 1, 1), dt.date(2024, 12, 31)),
            w.enrolment(fin), w.exam_results(fin), w.conscription(fin), w.service_record(fin),
            w.referrals(fin), w.mobile_numbers(fin), w.idp_status(fin),
            tuple(w.loans(fin, b) for b in BUREAUS), w.voen_of_entrepreneur(fin))


def test_the_same_fin_gives_the_same_story_twice_and_in_a_fresh_world(w: World, sample: list[str]) -> None:
    fresh = World()
    for fin in sample[:300]:
        first = facets_of(w, fin)
        assert facets_of(w, fin) == first
        assert facets_of(fresh, fin) == first


def test_the_same_fin_gives_the_same_person_in_another_process() -> None:
    """Seeded from SHA-256, so Python's per-process hash randomization cannot change anyone."""
    code = ("from ehis.simulators.world import World; w = World(); "
            "print(repr((w.person('5GXM4DZ'), w.family('5GXM4DZ'), w.employment('5GXM4DZ'))))")
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_another_salt_is_another_world(w: World) -> None:
    other = World("another-salt")
    fins = random_fins(50)
    assert [w.locate(f) for f in fins] != [other.locate(f) for f in fins]
    assert [w.person(f) for f in fins] != [other.person(f) for f in fins]


def test_the_default_world_is_shared() -> None:
    assert world() is world()
    assert world().person("5GXM4DZ") == World().person("5GXM4DZ")


# families ----------------------------------------------------------------------------------------
def test_spouses_are_symmetric_and_married_partners_alive(w: World, sample: list[str]) -> None:
    couples = 0
    for fin in sample:
        fam = w.family(fin)
        assert fam is not None
        if fam.spouse is not None:
            couples += 1
            other = w.family(fam.spouse)
            assert other is not None and other.spouse == fin
            assert fam.marital_status == other.marital_status == "married"
            me, them = w.person(fin), w.person(fam.spouse)
            assert me and them and me.death_date is None and them.death_date is None and me.sex != them.sex
    assert couples > 100


def test_parents_list_their_children_and_are_20_to_40_years_older(w: World, sample: list[str]) -> None:
    linked = 0
    for fin in sample:
        fam, me = w.family(fin), w.person(fin)
        assert fam is not None and me is not None
        for parent_fin, sex in ((fam.father, "M"), (fam.mother, "F")):
            if parent_fin is None:
                continue
            linked += 1
            parent, parent_family = w.person(parent_fin), w.family(parent_fin)
            assert parent is not None and parent_family is not None and parent.sex == sex
            assert fin in parent_family.children
            assert 20 <= years_between(parent.birth_date, me.birth_date) <= 40
        for child in fam.children:
            child_family = w.family(child)
            assert child_family is not None and fin in (child_family.father, child_family.mother)
        if fam.father is not None:
            father = w.person(fam.father)
            assert father is not None
            assert me.patronymic == father.name + (" oğlu" if me.sex == "M" else " qızı")
            assert me.surname == gendered(father.surname, me.sex)
    assert linked > 300


def test_only_children_of_a_unit_and_its_man_have_known_parents(w: World, sample: list[str]) -> None:
    for fin in sample:
        _, m = w.member(fin)  # type: ignore[misc]
        fam = w.family(fin)
        assert fam is not None
        if m.role not in ("child", "man"):
            assert fam.father is None and fam.mother is None


# households --------------------------------------------------------------------------------------
def test_every_member_sees_the_same_household_and_address(w: World, sample: list[str]) -> None:
    shared = 0
    for fin in sample:
        home = w.household(fin)
        person = w.person(fin)
        assert person is not None
        if person.death_date is not None:
            assert home is None
            continue
        assert home is not None
        assert [f for f, rel in home.members].count(fin) == 1
        assert home.members[0] == (home.head, "head")
        assert sum(rel == "head" for _, rel in home.members) == 1
        assert all(rel in ("head", "spouse", "child", "parent", "other") for _, rel in home.members)
        for member, _ in home.members:
            assert w.household(member) == home
            member_person = w.person(member)
            assert member_person is not None and member_person.address == home.address
            assert member_person.death_date is None
        head = w.person(home.head)
        assert head is not None and age_on(head.birth_date, REFERENCE_DATE) >= 18
        shared += len(home.members) > 1
    assert shared > 200


def test_children_in_a_household_are_minors_or_students(w: World, sample: list[str]) -> None:
    for fin in sample:
        home = w.household(fin)
        if home is None:
            continue
        head_family = w.family(home.head)
        assert head_family is not None
        for member, rel in home.members:
            if rel == "child":
                assert member in head_family.children
                kid = w.person(member)
                assert kid is not None
                if age_on(kid.birth_date, REFERENCE_DATE) >= 18:
                    assert any(e.full_time and e.expected_end > REFERENCE_DATE for e in w.enrolment(member))
            if rel == "spouse":
                assert head_family.spouse == member


def test_households_belong_to_the_authority_of_their_district(w: World, sample: list[str]) -> None:
    assert DISTRICTS_BY_CODE["AZ-BA"].authority == "yih-ba"
    assert len({d.authority for d in DISTRICTS}) == len(DISTRICTS)
    for fin in sample[:200]:
        person = w.person(fin)
        assert person is not None
        assert w.authority(fin) == DISTRICTS_BY_CODE[person.address.district_code].authority


# civil acts --------------------------------------------------------------------------------------
def test_civil_acts_are_linked(w: World, sample: list[str]) -> None:
    marriages = 0
    for fin in sample:
        acts, person, fam = w.civil_acts(fin), w.person(fin), w.family(fin)
        assert acts is not None and person is not None and fam is not None
        if person.citizenship != "AZE":
            assert acts.birth is None and not acts.marriages and not acts.children_births
            assert (acts.death is None) == (person.death_date is None)
            continue
        assert acts.birth is not None and acts.birth.date == person.birth_date and acts.birth.subject == fin
        assert (acts.birth.father, acts.birth.mother) == (fam.father, fam.mother)
        assert set(acts.children) == set(fam.children)
        for child_act in acts.children_births:
            child = w.person(child_act.subject)
            assert child is not None and child.birth_date == child_act.date
            child_acts = w.civil_acts(child_act.subject)
            assert child_acts is not None and child_acts.birth == child_act
        for act in acts.marriages + acts.divorces:
            partner = act.other_party(fin)
            assert partner is not None
            partner_acts = w.civil_acts(partner)
            assert partner_acts is not None
            assert act in partner_acts.marriages + partner_acts.divorces
            marriages += act.kind == "marriage"
        if fam.marital_status == "divorced":
            assert acts.divorces and acts.divorces[0].date > acts.marriages[0].date
        if fam.spouse is not None:
            assert any(a.other_party(fin) == fam.spouse for a in acts.marriages)
        assert (acts.death is None) == (person.death_date is None)
        assert re.fullmatch(r"AD-\d{4}-\d{7}", acts.birth.number)
    assert marriages > 100


# deaths ------------------------------------------------------------------------------------------
def assert_nothing_after(w: World, fin: str, death: dt.date) -> None:
    person, acts = w.person(fin), w.civil_acts(fin)
    assert person is not None and person.death_date == death
    assert acts is not None
    assert acts.death is not None and acts.death.date == death and acts.death.subject == fin
    assert w.household(fin) is None
    assert w.mobile_numbers(fin) == ()
    assert w.conscription(fin) is None
    for job in w.employment(fin):
        assert job.start <= death and job.end is not None and job.end <= death
    for row in w.income(fin, dt.date(2000, 1, 1), dt.date(2026, 12, 1)):
        assert row.month <= death.replace(day=1)
    record = w.border_crossings(fin, dt.date(2010, 1, 1), dt.date(2026, 12, 31))
    assert record is not None and all(c.date <= death for c in record.crossings)
    after = w.border_crossings(fin, death + dt.timedelta(days=1), death + dt.timedelta(days=800))
    assert after is not None and after.days_abroad == 0 and after.crossings == ()
    service = w.service_record(fin)
    for period in service.periods if service is not None else ():
        assert period.start <= death and period.end is not None and period.end <= death


def test_a_death_ends_everything_after_it(w: World, sample: list[str]) -> None:
    dead = [fin for fin in sample if (p := w.person(fin)) is not None and p.death_date is not None]
    assert len(dead) > 50
    for fin in dead:
        person = w.person(fin)
        assert person is not None and person.death_date is not None
        assert person.death_date < REFERENCE_DATE and person.death_date >= person.birth_date
        assert_nothing_after(w, fin, person.death_date)


def test_registering_a_death_shows_everywhere_and_resets() -> None:
    w = World()
    fin = next(f for f in random_fins(3000, seed=21) if (fam := w.family(f)) is not None and fam.spouse
               and w.employment(f) and w.employment(f)[-1].end is None and w.mobile_numbers(f))
    spouse = w.family(fin).spouse  # type: ignore[union-attr]
    before = (w.person(fin), w.family(spouse), w.household(spouse), w.employment(fin))
    death = dt.date(2023, 6, 15)
    act = w.register_death(fin, death)
    assert act.kind == "death" and act.subject == fin and act.date == death
    assert_nothing_after(w, fin, death)
    assert w.family(spouse).spouse is None and w.family(spouse).marital_status == "widowed"  # type: ignore[union-attr]
    assert fin not in [f for f, _ in w.household(spouse).members]  # type: ignore[union-attr]
    assert w.employment(fin)[-1].end == death
    with pytest.raises(ValueError):
        w.register_death(fin, death)
    w.reset_overlay()
    assert (w.person(fin), w.family(spouse), w.household(spouse), w.employment(fin)) == before


def test_a_death_abroad_ends_the_days_abroad_on_the_day_of_death() -> None:
    w = World()
    trips = ((f, c) for f in random_fins(3000, seed=51) if (p := w.person(f)) is not None and p.death_date is None
             for c in w.border_crossings(f, *YEAR_2024).crossings)  # type: ignore[union-attr]
    fin, left = next((f, c.date) for f, c in trips if c.direction == "EXIT" and c.date.month < 12)
    window = (left, left + dt.timedelta(days=400))
    assert w.border_crossings(fin, *window).days_abroad > 2  # type: ignore[union-attr]
    w.register_death(fin, left + dt.timedelta(days=1))  # abroad: the ENTRY after it is gone
    record = w.border_crossings(fin, *window)
    assert record is not None and [c.date for c in record.crossings] == [left]
    assert record.days_abroad == 2  # the exit day and the day of death, nothing after


def test_a_death_in_service_ends_the_service_record() -> None:
    w = World()
    serving = [f for u in range(4000) for s in (0, 2, 3, 4, 5)
               if (r := w.service_record(f := w.fin_at(u, s))) is not None and r.periods[-1].end is None]
    assert len(serving) >= 2
    fin, other = serving[:2]
    record = w.service_record(fin)
    assert record is not None
    contract = record.periods[-1]
    death = contract.start + dt.timedelta(days=40)
    w.register_death(fin, death)
    cut = w.service_record(fin)
    assert cut is not None and cut.periods[:-1] == record.periods[:-1]
    last = cut.periods[-1]
    assert (last.start, last.end, last.discharge_reason) == (contract.start, death, "death")
    first = w.service_record(other).periods[0]  # type: ignore[union-attr]
    w.register_death(other, first.start - dt.timedelta(days=1))  # before he was called up
    assert w.service_record(other) is None
    w.reset_overlay()
    assert w.service_record(fin) == record


# taxpayers and employers -------------------------------------------------------------------------
def assert_active_legal_entity(w: World, voen: str) -> None:
    taxpayer = w.taxpayer(voen)
    assert taxpayer is not None and taxpayer.kind == LEGAL_ENTITY and taxpayer.status == "active"
    assert voen.endswith("1")


def test_every_employer_is_an_active_legal_entity(w: World, sample: list[str]) -> None:
    employers: set[str] = set()
    for fin in sample[:3000]:
        employers.update(job.employer_voen for job in w.employment(fin))
        employers.update(row.employer_voen for row in w.income(fin, dt.date(2022, 1, 1), dt.date(2024, 12, 1)))
        employers.update(p.employer_voen for p in w.work_permits(fin))
    assert len(employers) > 300
    for voen in employers:
        assert_active_legal_entity(w, voen)


def test_taxpayers_exist_for_every_voen_and_their_heads_are_living_adults(w: World) -> None:
    rng = random.Random(17)
    kinds: Counter[str] = Counter()
    for _ in range(600):
        voen = f"{rng.randrange(1, 10)}{rng.randrange(10**8):08d}{rng.choice('12')}"
        taxpayer = w.taxpayer(voen)
        assert taxpayer is not None and taxpayer.voen == voen
        kinds[taxpayer.kind] += 1
        assert taxpayer.status in ("active", "suspended", "liquidated")
        assert taxpayer.sun.isdigit() and len(taxpayer.sun) == 10
        assert taxpayer.head_fin is not None
        head = w.person(taxpayer.head_fin)
        assert head is not None and head.death_date is None
        assert age_on(head.birth_date, REFERENCE_DATE) >= 18
        if taxpayer.kind == "natural_person":
            assert taxpayer.legal_form == "FS" and taxpayer.name == head.full_name
            assert w.voen_of_entrepreneur(taxpayer.head_fin) == voen
            assert taxpayer.legal_address == head.address
        else:
            assert taxpayer.legal_form in ("MMC", "QSC", "ASC", "PHŞ", "İB")
        assert all(re.fullmatch(r"\+994\d{9}", p) for p in taxpayer.phones)
    assert kinds["legal_entity"] > 200 and kinds["natural_person"] > 200
    assert w.taxpayer("0123456781") is None
    for bad in ("123", "12345678903", "123456789O", "1234567893"):
        with pytest.raises(ValueError):
            w.taxpayer(bad)


def test_entrepreneurs_map_back_to_their_voen(w: World, sample: list[str]) -> None:
    found = [(fin, voen) for fin in sample if (voen := w.voen_of_entrepreneur(fin))]
    assert found
    for fin, voen in found:
        taxpayer = w.taxpayer(voen)
        assert taxpayer is not None and taxpayer.head_fin == fin and voen.endswith("2")


# income ------------------------------------------------------------------------------------------
def test_income_only_while_employed(w: World, sample: list[str]) -> None:
    rows_seen = 0
    for fin in sample[:1500]:
        jobs = {j.employer_voen: j for j in w.employment(fin)}
        for row in w.income(fin, dt.date(2020, 1, 1), dt.date(2026, 6, 1)):
            rows_seen += 1
            job = jobs[row.employer_voen]
            assert job.start <= month_end(row.month) and (job.end is None or job.end >= row.month)
            assert row.declared > 0 and row.declared.as_tuple().exponent == -2
            assert row.withheld == ((max(row.declared - 200, Decimal(0)) * Decimal("0.14")).quantize(Decimal("0.01")))
        person = w.person(fin)
        assert person is not None
        if age_on(person.birth_date, REFERENCE_DATE) < 18:
            assert w.employment(fin) == ()
    assert rows_seen > 1000


# foreigners --------------------------------------------------------------------------------------
def test_only_foreigners_have_permits_and_their_document_is_the_permit(w: World, sample: list[str]) -> None:
    expired = other_employer = foreign = 0
    for fin in sample:
        person = w.person(fin)
        assert person is not None
        permit, work_permits = w.residence_permit(fin), w.work_permits(fin)
        if person.citizenship == "AZE":
            assert permit is None and work_permits == ()
            assert person.document.type == "ID_CARD"
            continue
        foreign += 1
        assert permit is not None and person.document.type == "RESIDENCE_PERMIT"
        assert (person.document.series, person.document.number) == (permit.series, permit.number)
        assert (person.document.issue_date, person.document.expiry_date) == (permit.start, permit.end)
        expired += permit.end < REFERENCE_DATE
        if permit.kind == "permanent":
            assert work_permits == ()
        for wp in work_permits:
            assert wp.start <= wp.end
        jobs = w.employment(fin)
        if work_permits and jobs and jobs[-1].end is None and work_permits[-1].end >= REFERENCE_DATE:
            other_employer += work_permits[-1].employer_voen != jobs[-1].employer_voen
    assert foreign > 100 and expired > 0


# found by walking units: foreign infants whose permit was drawn as expired before their birth
BORN_AFTER_AN_EXPIRY = ("JBRG8W5", "K78N59N", "MCU4RMN", "UTX7RSN", "JDLSYZ4")


def test_a_newborn_foreigners_permit_starts_before_it_ends(w: World) -> None:
    for fin in BORN_AFTER_AN_EXPIRY:
        person, permit = w.person(fin), w.residence_permit(fin)
        assert person is not None and permit is not None
        assert person.birth_date > REFERENCE_DATE - dt.timedelta(days=300)
        assert person.birth_date <= permit.start < permit.end
        assert person.document.issue_date < person.document.expiry_date


def test_some_foreign_workers_are_flagged(w: World) -> None:
    """Expired permits and permits for another employer both occur (flags for the callers)."""
    expired = other = 0
    for fin in random_fins(8000, seed=31):
        person = w.person(fin)
        if person is None or person.citizenship == "AZE":
            continue
        jobs, permits = w.employment(fin), w.work_permits(fin)
        if jobs and jobs[-1].end is None and permits:
            expired += permits[-1].end < REFERENCE_DATE
            other += permits[-1].employer_voen != jobs[-1].employer_voen
    assert expired > 0 and other > 0


def test_issuing_a_permit_shows_and_resets() -> None:
    w = World()
    fin = next(f for f in random_fins(5000, seed=41) if (p := w.person(f)) and p.citizenship != "AZE"
               and p.death_date is None)
    citizen = next(f for f in random_fins(100, seed=42) if (p := w.person(f)) and p.citizenship == "AZE"
                   and p.death_date is None)
    employer = w.employer_voen(7)
    wp = w.issue_permit(fin, "work", dt.date(2025, 2, 1), employer_voen=employer, position="mühəndis")
    assert w.work_permits(fin)[-1] == wp and wp.employer_voen == employer
    rp = w.issue_permit(fin, "residence", dt.date(2025, 2, 1), permanent=True)
    assert w.residence_permit(fin) == rp
    assert w.person(fin).document.number == rp.number  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        w.issue_permit(citizen, "residence", dt.date(2025, 2, 1))
    with pytest.raises(ValueError):
        w.issue_permit(fin, "work", dt.date(2025, 2, 1), employer_voen="0123456781")
    w.reset_overlay()
    assert wp not in w.work_permits(fin) and w.residence_permit(fin) != rp


# military ----------------------------------------------------------------------------------------
def test_conscription_only_for_men_of_age_and_service_only_for_those_who_served(w: World, sample: list[str]) -> None:
    statuses: Counter[str] = Counter()
    contracts = retired = 0
    for fin in sample:
        person = w.person(fin)
        assert person is not None
        status, record = w.conscription(fin), w.service_record(fin)
        age = age_on(person.birth_date, REFERENCE_DATE)
        of_age = person.sex == "M" and person.citizenship == "AZE" and 18 <= age <= 35
        if status is not None:
            assert of_age and person.death_date is None
            statuses[status.status] += 1
            assert (status.status == "served") == (record is not None)
            if status.status == "deferred":
                assert status.reason in ("education", "family") and status.until and status.until > REFERENCE_DATE
        elif of_age:
            assert person.death_date is not None
        if record is not None:
            assert person.sex == "M" and person.citizenship == "AZE"
            first = record.periods[0]
            assert first.end is not None and first.end < REFERENCE_DATE
            assert age_on(person.birth_date, first.start) >= 18
            assert record.combat_veteran == any(p.combat for p in record.periods)
            for period in record.periods:
                if period.end is None:  # a contract still running: under the age limit
                    assert age < 45 and person.death_date is None
                    contracts += 1
                elif period.discharge_reason == "age_limit":
                    assert age_on(person.birth_date, period.end + dt.timedelta(days=1)) == 45
                    retired += 1
    assert {"served", "registered", "deferred"} <= set(statuses)
    assert contracts and retired


# border crossings --------------------------------------------------------------------------------
def brute_force_days_abroad(crossings: list[tuple[dt.date, str]], start: dt.date, end: dt.date) -> int:
    days, day = 0, start
    while day <= end:
        state = None
        for when, direction in crossings:
            if when <= day:
                state = direction
        days += state == "EXIT"
        day += dt.timedelta(days=1)
    return days


def test_border_crossings_alternate_and_days_abroad_follow_the_rule(w: World, sample: list[str]) -> None:
    travellers = 0
    rng = random.Random(9)
    for fin in sample[:800]:
        full = w.border_crossings(fin, dt.date(2000, 1, 1), dt.date(2030, 12, 31))
        assert full is not None
        directions = [c.direction for c in full.crossings]
        if not directions:
            continue
        travellers += 1
        person = w.person(fin)
        assert person is not None
        if directions[0] == "ENTRY":
            assert person.citizenship != "AZE"
            directions = directions[1:]
        assert all(d == ("EXIT" if i % 2 == 0 else "ENTRY") for i, d in enumerate(directions))
        dates = [c.date for c in full.crossings]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)
        pairs = [(c.date, c.direction) for c in full.crossings]
        for _ in range(3):
            start = dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(5500))
            end = start + dt.timedelta(days=rng.randrange(1, 800))
            window = w.border_crossings(fin, start, end)
            assert window is not None
            assert window.days_abroad == brute_force_days_abroad(pairs, start, end)
            assert window.days_abroad == days_abroad(full.crossings, start, end)
            assert all(start <= c.date <= end for c in window.crossings)
    assert travellers > 100


# utilities ---------------------------------------------------------------------------------------
def test_only_household_heads_subscribe_at_their_registered_address(w: World, sample: list[str]) -> None:
    subscribers = 0
    for fin in sample[:5000]:
        home, person = w.household(fin), w.person(fin)
        assert person is not None
        for kind in UTILITY_KINDS:
            sub = w.utilities(fin, kind)
            if home is None or home.head != fin:
                assert sub is None
                continue
            if kind == "electricity":
                assert sub is not None
            if sub is None:
                continue
            subscribers += 1
            assert sub.subscriber_fin == fin and sub.address == person.address == home.address
            use = w.consumption(fin, kind, *YEAR_2024)
            assert use is not None and use.subscription == sub
            assert [u.month for u in use.months] == [m for m in months(*YEAR_2024) if m >= sub.since]
            assert all(u.amount >= 0 for u in use.months)
    assert subscribers > 300
    with pytest.raises(ValueError):
        w.utilities(sample[0], "telephone")


def test_a_heads_subscription_answers_to_any_spelling_of_the_fin(w: World, sample: list[str]) -> None:
    """Trimmed and upper-cased like every facet: a lower-case FIN is the same head, not "no record"."""
    heads = [f for f in sample if (h := w.household(f)) is not None and h.head == f][:40]
    assert len(heads) == 40
    for fin in heads:
        for spelled in (fin.lower(), f" {fin} "):
            for kind in UTILITY_KINDS:
                assert w.utilities(spelled, kind) == w.utilities(fin, kind)
            assert w.consumption(spelled, "electricity", *YEAR_2024) == w.consumption(fin, "electricity", *YEAR_2024)
        assert w.utilities(fin.lower(), "electricity").subscriber_fin == fin  # type: ignore[union-attr]


def test_a_divorced_mans_own_subscription_begins_with_the_divorce(w: World, sample: list[str]) -> None:
    """Until the divorce he lived in (and, married, headed) the family home; his own home, and its
    subscriptions, date from the divorce, so his subscriptions never overlap."""
    checked = 0
    for fin in sample:
        acts, home = w.civil_acts(fin), w.household(fin)
        if acts is None or not acts.divorces or home is None or home.head != fin or acts.divorces[-1].subject != fin:
            continue
        divorce = acts.divorces[-1].date
        for kind in UTILITY_KINDS:
            sub = w.utilities(fin, kind)
            if sub is not None:
                assert sub.since == max(divorce, dt.date(2010, 1, 1)).replace(day=1), (fin, kind)
        use = w.consumption(fin, "electricity", dt.date(2010, 1, 1), divorce)
        assert use is not None and all(u.month >= divorce.replace(day=1) for u in use.months)
        checked += divorce >= dt.date(2010, 2, 1)
    assert checked > 5


def test_a_new_head_after_a_death_keeps_the_subscription() -> None:
    w = World()
    fin = next(f for f in random_fins(3000, seed=63) if (h := w.household(f)) is not None and h.head == f
               and any(rel == "spouse" for _, rel in h.members))
    home = w.household(fin)
    assert home is not None
    spouse = next(f for f, rel in home.members if rel == "spouse")
    before = w.utilities(fin, "electricity")
    assert before is not None and w.utilities(spouse, "electricity") is None
    w.register_death(fin, dt.date(2024, 3, 10))
    after = w.utilities(spouse, "electricity")
    assert w.utilities(fin, "electricity") is None
    assert after is not None and after.subscriber_fin == spouse
    assert (after.subscriber_code, after.address, after.since) == (before.subscriber_code, before.address,
                                                                  before.since)


# property ----------------------------------------------------------------------------------------
def test_a_couples_home_is_owned_jointly(w: World, sample: list[str]) -> None:
    joint = 0
    shares: dict[str, Fraction] = {}
    for fin in sample:
        for prop in w.real_estate(fin):
            shares[prop.registry_number] = shares.get(prop.registry_number, Fraction(0)) + prop.share
            assert prop.kind in ("apartment", "house", "non_residential") and prop.area_m2 > 0
        fam = w.family(fin)
        assert fam is not None
        if fam.spouse and any(p.share == Fraction(1, 2) for p in w.real_estate(fin)):
            mine = {p.registry_number for p in w.real_estate(fin) if p.share == Fraction(1, 2)}
            theirs = {p.registry_number for p in w.real_estate(fam.spouse)}
            assert mine <= theirs
            joint += 1
    assert joint > 20
    assert all(total <= 1 for total in shares.values())


def test_land_plots_and_vehicles_are_well_formed(w: World, sample: list[str]) -> None:
    plots = cars = 0
    for fin in sample:
        person = w.person(fin)
        assert person is not None
        for plot in w.land_plots(fin):
            plots += 1
            assert plot.district_code in DISTRICTS_BY_CODE and Decimal("0.05") <= plot.area_ha <= 5
            assert plot.share in (Fraction(1), Fraction(1, 2))
        for car in w.vehicles(fin):
            cars += 1
            assert re.fullmatch(r"\d{2}-[A-Z]{2}-\d{3}", car.plate)
            assert car.registration_date >= add_years(person.birth_date, 18)
            assert car.registration_date.year >= car.year
    assert plots > 50 and cars > 200


def test_property_is_registered_to_adults_and_a_couples_after_their_marriage(w: World, sample: list[str]) -> None:
    """No deed names a child (or someone unborn), and what a couple holds 1/2 each dates from the marriage."""
    checked = joint = 0
    for fin in sample:
        person, acts = w.person(fin), w.civil_acts(fin)
        assert person is not None and acts is not None
        married = min((act.date for act in acts.marriages), default=None)
        for registered, share in [(p.registration_date, p.share) for p in w.real_estate(fin)] + \
                                 [(p.registration_date, p.share) for p in w.land_plots(fin)]:
            checked += 1
            assert registered >= add_years(person.birth_date, 18), (fin, registered, person.birth_date)
            if share == Fraction(1, 2) and married is not None:  # foreigners' marriages are not acts here
                joint += 1
                assert registered >= married, (fin, registered, married)
    assert checked > 3000 and joint > 1000


# education and exams -----------------------------------------------------------------------------
def test_enrolment_and_exams_fit_the_age(w: World, sample: list[str]) -> None:
    for fin in sample:
        person = w.person(fin)
        assert person is not None
        for e in w.enrolment(fin):
            age = age_on(person.birth_date, e.start)
            assert e.start < e.expected_end
            if e.level == "general":
                assert 5 <= age <= 7
            else:
                assert age >= 17
        admitted = {(a.institution, a.speciality) for x in w.exam_results(fin) if (a := x.admission)}
        studied = {(e.institution, e.speciality) for e in w.enrolment(fin) if e.speciality}
        assert admitted <= studied
        for x in w.exam_results(fin):
            assert x.year > 2005 and age_on(person.birth_date, dt.date(x.year, 7, 1)) >= 17


def test_school_is_where_one_grew_up(w: World, sample: list[str]) -> None:
    """A unit's children went to school from the family home, the man from his parents' (when linked),
    even after moving to another district; everyone else from their own home."""
    moved = 0
    for fin in sample:
        unit, m = w.member(fin)  # type: ignore[misc]
        schools = [e for e in w.enrolment(fin) if e.level in ("general", "vocational")]
        fam = w.family(fin)
        assert fam is not None
        if m.role == "child" or (m.role == "man" and (fam.father or fam.mother)):
            home = "F" if m.role == "child" else "G"
        else:
            home = m.home
        district = w.base_district(unit.number, home)
        for school in schools:
            assert school.institution.startswith(f"{district.name} "), (fin, school.institution, district.name)
        if schools and district != w.base_district(unit.number, m.home):
            moved += 1
    assert moved > 100


# phones, referrals, IDPs, loans ------------------------------------------------------------------
def test_mobile_numbers_only_for_living_adults(w: World, sample: list[str]) -> None:
    for fin in sample:
        person = w.person(fin)
        assert person is not None
        numbers = w.mobile_numbers(fin)
        if numbers:
            assert person.death_date is None and age_on(person.birth_date, REFERENCE_DATE) >= 18
        assert all(re.fullmatch(r"\+994(50|51|55|70|77|99|10)\d{7}", n.number) for n in numbers)


# found by walking units: born 2007-01-01, 18 on REFERENCE_DATE itself
EIGHTEEN_ON_THE_DAY = ("V5GJUCP", "MN2SV5J", "CLHWZQZ", "FKVD1ZR", "CRZFDW2", "MMKF312")


def test_who_turns_18_on_the_reference_date_registers_numbers_that_day(w: World) -> None:
    """The registration date was drawn from an empty range (ValueError) for these people."""
    numbers = 0
    for fin in EIGHTEEN_ON_THE_DAY:
        person = w.person(fin)
        assert person is not None and add_years(person.birth_date, 18) == REFERENCE_DATE
        for number in w.mobile_numbers(fin):
            numbers += 1
            assert number.registered == REFERENCE_DATE
    assert numbers > 0


def test_foreigners_register_numbers_after_they_arrive(w: World, sample: list[str]) -> None:
    seen = 0
    for fin in sample:
        found = w.member(fin)
        assert found is not None
        if not found[1].foreign:
            continue
        came = arrival(w, *found)
        for number in w.mobile_numbers(fin):
            seen += 1
            assert number.registered >= came
    assert seen > 50


def test_referrals_are_issued_before_death(w: World, sample: list[str]) -> None:
    seen = 0
    for fin in sample:
        person = w.person(fin)
        assert person is not None
        for ref in w.referrals(fin):
            seen += 1
            assert ref.kind in ("sanatorium", "disability_assessment") and ref.valid_until > ref.date
            assert re.fullmatch(r"[A-Z]\d{2}(\.\d)?", ref.icd10)
            assert person.death_date is None or ref.date < person.death_date
    assert seen > 20


def test_idp_status_is_shared_by_the_kin_group(w: World, sample: list[str]) -> None:
    holders = 0
    for fin in sample:
        status = w.idp_status(fin)
        if status is None:
            continue
        holders += 1
        assert fin in status.family_members
        person = w.person(fin)
        assert person is not None and person.citizenship == "AZE"
        assert status.temporary_residence == person.address
        for other in status.family_members:
            theirs = w.idp_status(other)
            assert theirs is not None and theirs.status == status.status
            assert theirs.region_of_origin == status.region_of_origin
            assert set(theirs.family_members) == set(status.family_members)
    assert holders > 20


def test_changing_an_idp_status_affects_the_group_and_resets() -> None:
    w = World()
    fin = next(f for f in random_fins(3000, seed=51) if (fam := w.family(f)) and fam.children
               and w.idp_status(f) is None and w.person(f).citizenship == "AZE"  # type: ignore[union-attr]
               and w.person(f).death_date is None)  # type: ignore[union-attr]
    child = w.family(fin).children[0]  # type: ignore[union-attr]
    status = w.change_idp_status(fin, "idp", "Şuşa", since=dt.date(2025, 3, 1))
    assert status is not None and w.idp_status(child) is not None
    assert w.idp_status(child).region_of_origin == "Şuşa"  # type: ignore[union-attr]
    w.change_idp_status(child, None)
    assert w.idp_status(fin) is None
    with pytest.raises(ValueError):
        w.change_idp_status(fin, "tourist", "Şuşa")
    w.reset_overlay()
    assert w.idp_status(fin) is None and w.idp_status(child) is None


def test_loans_per_bureau_share_ids(w: World, sample: list[str]) -> None:
    shared = 0
    for fin in sample:
        by_bureau = {b: {loan.id: loan for loan in w.loans(fin, b)} for b in BUREAUS}
        ids = [i for loans in by_bureau.values() for i in loans]
        shared += len(ids) - len(set(ids))
        for bureau, loans in by_bureau.items():
            for loan in loans.values():
                assert bureau in loan.bureaus
                assert loan.outstanding >= 0 and loan.monthly_payment > 0
                assert (loan.status == "closed") == (loan.outstanding == 0 and loan.end <= REFERENCE_DATE)
                for other in loan.bureaus:
                    assert by_bureau[other][loan.id] == loan
    assert shared > 50
    with pytest.raises(ValueError):
        w.loans(sample[0], "xyz")


# statistics --------------------------------------------------------------------------------------
def test_statistics_tables_grow_by_year(w: World) -> None:
    totals = [w.subsistence_minimum(y, "total") for y in range(2005, 2027)]
    assert all(t is not None for t in totals) and totals == sorted(totals)  # type: ignore[type-var]
    for group in ("working_age", "pensioner", "child"):
        assert w.subsistence_minimum(2024, group) is not None
    assert w.subsistence_minimum(1990) is None
    with pytest.raises(ValueError):
        w.subsistence_minimum(2024, "pets")
    yearly = [sum(w.average_wage(y, m) for m in range(1, 13)) for y in range(2005, 2027)]  # type: ignore[misc]
    assert yearly == sorted(yearly)
    assert w.average_wage(2024, 12) > w.average_wage(2024, 1)  # type: ignore[operator]
    assert w.average_wage(1980, 1) is None


# overlay: moves ----------------------------------------------------------------------------------
def test_moving_a_household_moves_every_member_and_resets() -> None:
    w = World()
    fin = next(f for f in random_fins(3000, seed=61) if (h := w.household(f)) and len(h.members) >= 3)
    home = w.household(fin)
    assert home is not None
    head_sub = w.utilities(home.head, "electricity")
    target = "AZ-SAB" if home.address.district_code != "AZ-SAB" else "AZ-QBA"
    new = w.change_address(fin, target)
    assert new.district_code == target and new != home.address
    for member, _ in home.members:
        assert w.person(member).address == new  # type: ignore[union-attr]
        assert w.household(member).address == new  # type: ignore[union-attr]
    sub = w.utilities(home.head, "electricity")
    assert sub is not None and sub.address == new and head_sub is not None
    with pytest.raises(ValueError):
        w.change_address(fin, "AZ-XX")
    w.reset_overlay()
    assert w.household(fin) == home and w.utilities(home.head, "electricity") == head_sub


# the population as a whole -----------------------------------------------------------------------
def test_invariants_on_random_fins(w: World) -> None:
    """A property test with a fixed seed: every facet answers and agrees with the person record."""
    people = 0
    for fin in random_fins(3000, seed=99):
        person = w.person(fin)
        if fin.startswith("0"):
            assert person is None
            continue
        assert person is not None and person.fin == fin
        people += 1
        assert person.sex in ("M", "F") and re.fullmatch(r"[A-Z]{3}", person.citizenship)
        assert person.birth_date < REFERENCE_DATE
        assert person.patronymic.endswith(" oğlu" if person.sex == "M" else " qızı")
        assert person.document.issue_date < person.document.expiry_date
        assert person.document.issue_date >= person.birth_date
        district = DISTRICTS_BY_CODE[person.address.district_code]
        assert person.address.district_name == district.name and person.address.text.startswith(district.name)
        if person.death_date is None and person.citizenship == "AZE":
            assert person.document.expiry_date > REFERENCE_DATE
        age = age_on(person.birth_date, REFERENCE_DATE)
        if age < 18:
            assert w.employment(fin) == () and w.vehicles(fin) == () and w.mobile_numbers(fin) == ()
        for job in w.employment(fin):
            assert age_on(person.birth_date, job.start) >= 18 and (job.end is None or job.end >= job.start)
        facets_of(w, fin)
    assert people > 2800


def test_population_mix(w: World) -> None:
    people = [p for f in random_fins(3000, seed=5) if (p := w.person(f))]
    sexes = Counter(p.sex for p in people)
    assert 0.44 < sexes["M"] / len(people) < 0.56
    foreigners = sum(p.citizenship != "AZE" for p in people) / len(people)
    assert 0.04 < foreigners < 0.14
    districts = Counter(p.address.district_code for p in people)
    assert districts.most_common(1)[0][0] == "AZ-BA" and len(districts) > 15
    assert 0.02 < sum(p.death_date is not None for p in people) / len(people) < 0.15


def test_concurrent_readers_and_writers_agree() -> None:
    fins = [f for f in random_fins(400, seed=81) if not f.startswith("0")]
    expected = {f: (World().person(f), World().family(f)) for f in fins[:50]}
    shared = World()
    with ThreadPoolExecutor(8) as pool:
        got = dict(zip(fins[:50], pool.map(lambda f: (shared.person(f), shared.family(f)), fins[:50])))
    assert got == expected
    living = [f for f in fins if (p := shared.person(f)) is not None and p.death_date is None][:64]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: shared.register_death(f, dt.date(2025, 5, 1)), living))
    assert all(shared.person(f).death_date == dt.date(2025, 5, 1) for f in living)  # type: ignore[union-attr]
    shared.reset_overlay()
    assert all(shared.person(f).death_date is None for f in living)  # type: ignore[union-attr]


def test_no_job_starts_before_its_employer_was_registered(w: World) -> None:
    checked = 0
    for fin in random_fins(1500, seed=97):
        for job in w.employment(fin):
            employer = w.taxpayer(job.employer_voen)
            assert employer is not None and employer.registration_date <= job.start, (fin, job)
            checked += 1
    assert checked > 300
