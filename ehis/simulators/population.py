"""A deterministic synthetic population: the same FIN always gives the same person.

Rule for "not found": **a FIN whose first character is the digit `0` is not held by the
registry** (`holds(fin)` is False, `find(fin)` returns None); every other well-formed FIN is
held. Integration testers rely on this rule to provoke `PersonNotFound` without a fixture.

Each person is drawn from a Faker `az_AZ` generator seeded with a stable hash of the FIN
(SHA-256, never Python's randomized `hash()`), so a person is the same in every process and on
every run with the same Faker version. Shape of the population:

- sex 50/50; surnames are gendered (`last_name_male` / `last_name_female`), the patronymic is
  the father's first name + " oğlu" (son) or " qızı" (daughter);
- born 1940-01-01 .. 2008-12-31;
- about 97 % citizens (`AZE`, an `ID_CARD` of series "AA" with 7 digits issued by DİN or an
  ASAN xidmət centre), about 3 % foreigners (another ISO alpha-3 citizenship, a
  `RESIDENCE_PERMIT` from the State Migration Service);
- the document is the current one: issued after the 16th birthday and within its validity
  before `REFERENCE_DATE` (a fixed date, so a person does not change as time passes);
  ID cards expire 10 years after issue, residence permits 5 years;
- the registered address lies in one of a small table of real ISO 3166-2:AZ cities and
  districts (weighted towards Baku), and its text names that district.

Generation costs about 60 µs and is cached (`functools.lru_cache`); a cache hit about 0.2 µs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import threading
from dataclasses import dataclass
from functools import lru_cache

from faker import Faker

from ehis.identifiers import FIN_PATTERN

REFERENCE_DATE = dt.date(2025, 1, 1)
BIRTH_FIRST = dt.date(1940, 1, 1)
BIRTH_LAST = dt.date(2008, 12, 31)
FOREIGNER_SHARE = 0.03
ID_CARD_YEARS = 10
RESIDENCE_PERMIT_YEARS = 5
_SEED_SALT = b"ehis-population-v1:"


@dataclass(frozen=True)
class District:
    code: str  # ISO 3166-2:AZ
    name: str
    city: bool  # a city (şəhər) rather than a district (rayon)
    weight: int  # relative share of the population


DISTRICTS: tuple[District, ...] = (
    District("AZ-BA", "Bakı", True, 40),
    District("AZ-GA", "Gəncə", True, 7),
    District("AZ-SM", "Sumqayıt", True, 6),
    District("AZ-MI", "Mingəçevir", True, 2),
    District("AZ-LA", "Lənkəran", True, 2),
    District("AZ-SA", "Şəki", True, 2),
    District("AZ-SR", "Şirvan", True, 2),
    District("AZ-YE", "Yevlax", True, 1),
    District("AZ-NA", "Naftalan", True, 1),
    District("AZ-ABS", "Abşeron", False, 4),
    District("AZ-QBA", "Quba", False, 3),
    District("AZ-QAB", "Qəbələ", False, 2),
    District("AZ-ISM", "İsmayıllı", False, 2),
    District("AZ-MAS", "Masallı", False, 3),
    District("AZ-SAB", "Sabirabad", False, 2),
    District("AZ-SKR", "Şəmkir", False, 3),
    District("AZ-ZAQ", "Zaqatala", False, 2),
    District("AZ-XAC", "Xaçmaz", False, 2),
    District("AZ-TOV", "Tovuz", False, 2),
    District("AZ-BAR", "Bərdə", False, 2),
    District("AZ-AST", "Astara", False, 1),
    District("AZ-SAL", "Salyan", False, 2),
)
DISTRICTS_BY_CODE: dict[str, District] = {d.code: d for d in DISTRICTS}
_DISTRICT_WEIGHTS = [d.weight for d in DISTRICTS]

BAKU_RAIONS = (
    "Binəqədi", "Nərimanov", "Nəsimi", "Nizami", "Qaradağ", "Sabunçu",
    "Səbail", "Suraxanı", "Xətai", "Xəzər", "Yasamal", "Pirallahı",
)
FOREIGN_CITIZENSHIPS = ("RUS", "TUR", "GEO", "IRN", "UKR", "UZB", "KAZ", "IND", "CHN", "PAK")
ASAN_CENTRES = (
    "Bakı 1 saylı ASAN xidmət mərkəzi",
    "Bakı 2 saylı ASAN xidmət mərkəzi",
    "Bakı 3 saylı ASAN xidmət mərkəzi",
    "Bakı 5 saylı ASAN xidmət mərkəzi",
    "Gəncə ASAN xidmət mərkəzi",
    "Sumqayıt ASAN xidmət mərkəzi",
    "Şəki ASAN xidmət mərkəzi",
    "Masallı ASAN xidmət mərkəzi",
)
DIN_BODY = "DİN"
MIGRATION_BODY = "Dövlət Miqrasiya Xidməti"


@dataclass(frozen=True)
class Document:
    type: str  # ID_CARD | PASSPORT | RESIDENCE_PERMIT
    series: str
    number: str
    issue_date: dt.date
    issuing_body: str
    expiry_date: dt.date


@dataclass(frozen=True)
class Address:
    text: str
    district_code: str
    district_name: str


@dataclass(frozen=True)
class Person:
    """A registry record, in the registry's own terms (not the hub's canonical model)."""

    fin: str
    surname: str
    name: str
    patronymic: str
    birth_date: dt.date
    sex: str  # M | F
    citizenship: str  # ISO 3166-1 alpha-3
    document: Document
    address: Address


def holds(fin: str) -> bool:
    """Whether the registry holds this (well-formed) FIN: all but those starting with "0"."""
    return not fin.startswith("0")


def find(fin: str) -> Person | None:
    """The person with this FIN, or None when the registry does not hold it."""
    return person(fin) if holds(fin) else None


@lru_cache(maxsize=65_536)
def person(fin: str) -> Person:
    """The person a well-formed FIN stands for (ignores the not-found rule; see `find`)."""
    if not FIN_PATTERN.fullmatch(fin):
        raise ValueError("not a well-formed FIN")
    with _LOCK:  # the generator is shared and re-seeded per person
        _FAKER.seed_instance(_seed(fin))
        return _draw(fin, _FAKER)


_FAKER = Faker("az_AZ")
_LOCK = threading.Lock()


def _seed(fin: str) -> int:
    return int.from_bytes(hashlib.sha256(_SEED_SALT + fin.encode()).digest()[:8], "big")


def _draw(fin: str, fake: Faker) -> Person:
    rng = fake.random
    male = rng.random() < 0.5
    if male:
        name, surname, suffix = fake.first_name_male(), fake.last_name_male(), " oğlu"
    else:
        name, surname, suffix = fake.first_name_female(), fake.last_name_female(), " qızı"
    patronymic = fake.first_name_male() + suffix
    birth = _date_between(rng, BIRTH_FIRST, BIRTH_LAST)
    foreigner = rng.random() < FOREIGNER_SHARE
    citizenship = rng.choice(FOREIGN_CITIZENSHIPS) if foreigner else "AZE"
    return Person(
        fin=fin,
        surname=surname,
        name=name,
        patronymic=patronymic,
        birth_date=birth,
        sex="M" if male else "F",
        citizenship=citizenship,
        document=_document(rng, birth, foreigner),
        address=_address(fake),
    )


def _document(rng: random.Random, birth: dt.date, foreigner: bool) -> Document:
    years = RESIDENCE_PERMIT_YEARS if foreigner else ID_CARD_YEARS
    sixteenth = _add_years(birth, 16)
    earliest = max(sixteenth, _add_years(REFERENCE_DATE, -years) + dt.timedelta(days=1))
    issued = _date_between(rng, earliest, REFERENCE_DATE - dt.timedelta(days=1))
    if foreigner:
        return Document("RESIDENCE_PERMIT", "MI", f"{rng.randrange(10**7):07d}", issued,
                        MIGRATION_BODY, _add_years(issued, years))
    body = DIN_BODY if rng.random() < 0.4 else rng.choice(ASAN_CENTRES)
    return Document("ID_CARD", "AA", f"{rng.randrange(10**7):07d}", issued, body, _add_years(issued, years))


def _address(fake: Faker) -> Address:
    rng = fake.random
    district = rng.choices(DISTRICTS, weights=_DISTRICT_WEIGHTS)[0]
    street = f"{_street_name(fake.street())} küçəsi"
    house = rng.randint(1, 180)
    if district.city:
        place = f"{district.name} şəhəri"
        if district.code == "AZ-BA":
            place += f", {rng.choice(BAKU_RAIONS)} rayonu"
        text = f"{place}, {street}, ev {house}, mənzil {rng.randint(1, 120)}"
    elif rng.random() < 0.5:
        text = f"{district.name} rayonu, {district.name} şəhəri, {street}, ev {house}"
    else:
        text = f"{district.name} rayonu, {_az_title(fake.village())} kəndi, {street}, ev {house}"
    return Address(text, district.code, district.name)


def _street_name(raw: str) -> str:
    """Faker's street list is upper-case and one entry already ends in "KÜÇƏSİ,"."""
    name = _az_title(raw.strip(" ,"))
    return name.removesuffix(" Küçəsi")


def _date_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return dt.date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


_AZ_LOWER = str.maketrans({"I": "ı", "İ": "i"})


def _az_title(text: str) -> str:
    """Title case with Azerbaijani dotted/dotless i (Python's str.title gets İ and I wrong)."""
    out: list[str] = []
    start = True
    for ch in text:
        if start:
            out.append(ch.upper() if ch not in "iı" else {"i": "İ", "ı": "I"}[ch])
        else:
            out.append(ch.translate(_AZ_LOWER).lower())
        start = ch in " .-"
    return "".join(out)
