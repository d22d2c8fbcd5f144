"""The synthetic population: deterministic, shaped like the registry, valid against din.xsd."""

from __future__ import annotations

import collections
import os
import random
import subprocess
import sys

import pytest
from lxml import etree

from ehis.contracts import xsd_path
from ehis.simulators import population
from ehis.simulators.population import DISTRICTS_BY_CODE, find, holds, person
from ehis.simulators.responders.din import NS, get_person

ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def fins(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(7)) for _ in range(count)]


@pytest.fixture(scope="module")
def people() -> list[population.Person]:
    return [person(fin) for fin in fins(3000) if holds(fin)]


def test_the_same_fin_gives_the_same_person_even_uncached() -> None:
    first = person("5GXM4DZ")
    person.cache_clear()
    assert person("5GXM4DZ") == first
    assert person("5GXM4DY") != first


def test_the_same_fin_gives_the_same_person_in_another_process() -> None:
    """Seeded from SHA-256, so Python's per-process hash randomization cannot change anyone."""
    code = "from ehis.simulators.population import person; print(repr(person('5GXM4DZ')))"
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert outputs == {repr(person("5GXM4DZ")) + "\n"}


def test_fins_starting_with_zero_are_not_held() -> None:
    assert not holds("0ABCDEF") and find("0ABCDEF") is None
    assert holds("1ABCDEF") and find("1ABCDEF") == person("1ABCDEF")


def test_a_malformed_fin_has_no_person() -> None:
    with pytest.raises(ValueError):
        person("ABC")


def test_every_generated_response_validates_against_the_contract() -> None:
    schema = etree.XMLSchema(etree.parse(str(xsd_path("din"))))
    checked = 0
    for fin in fins(2000, seed=11):
        if not holds(fin):
            continue
        request = etree.Element(f"{{{NS}}}GetPerson")
        etree.SubElement(request, f"{{{NS}}}fin").text = fin
        schema.assertValid(get_person(request))
        checked += 1
    assert checked > 1500


def test_people_are_shaped_like_the_registry(people: list[population.Person]) -> None:
    for p in people:
        assert population.BIRTH_FIRST <= p.birth_date <= population.BIRTH_LAST
        assert p.patronymic.endswith(" oğlu" if p.sex == "M" else " qızı")
        doc = p.document
        assert doc.issue_date >= population._add_years(p.birth_date, 16)
        assert doc.issue_date < population.REFERENCE_DATE < doc.expiry_date
        if p.citizenship == "AZE":
            assert doc.type == "ID_CARD" and doc.series == "AA"
            assert len(doc.number) == 7 and doc.number.isdigit()
            assert doc.expiry_date == population._add_years(doc.issue_date, 10)
            assert doc.issuing_body == "DİN" or "ASAN xidmət" in doc.issuing_body
        else:
            assert doc.type == "RESIDENCE_PERMIT" and len(p.citizenship) == 3
        district = DISTRICTS_BY_CODE[p.address.district_code]
        assert p.address.district_name == district.name
        assert p.address.text.startswith(district.name)


def test_population_mix(people: list[population.Person]) -> None:
    sexes = collections.Counter(p.sex for p in people)
    assert 0.45 < sexes["M"] / len(people) < 0.55
    foreigners = sum(p.citizenship != "AZE" for p in people) / len(people)
    assert 0.01 < foreigners < 0.06
    districts = collections.Counter(p.address.district_code for p in people)
    assert districts.most_common(1)[0][0] == "AZ-BA"
    assert len(districts) > 15
    assert len({(p.surname, p.name) for p in people}) > len(people) / 3


def test_generation_is_cached() -> None:
    person("9ZZZZZZ")
    hits = person.cache_info().hits
    person("9ZZZZZZ")
    assert person.cache_info().hits == hits + 1
