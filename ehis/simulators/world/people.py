"""People: names, identity documents and the `Person` record the interior ministry (din) keeps.

Names come from Faker's `az_AZ` lists, drawn with the person's own seeded generator (no shared
Faker instance, so no lock). Family names follow the unit: the man, his father and his children
share one surname (gendered for daughters); children's patronymic is the man's first name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from faker.providers.person.az_AZ import Provider as _FakerNames

from .dates import DAY, REFERENCE_DATE, add_years, date_between
from .ids import rng
from .places import ASAN_CENTRES, Address
from .units import CHILD, GRANDFATHER, MAN, Member, Unit

ID_CARD_YEARS = 10
DIN_BODY = "DİN"
MIGRATION_BODY = "Dövlət Miqrasiya Xidməti"

_MALE = tuple(n.strip() for n in _FakerNames.first_names_male)  # one entry has a trailing space
_FEMALE = tuple(n.strip() for n in _FakerNames.first_names_female)
_SURNAMES_MALE = tuple(n.strip() for n in (*_FakerNames.last_names_male, *_FakerNames.last_names_unisex))
_SURNAMES_FEMALE = tuple(n.strip() for n in (*_FakerNames.last_names_female, *_FakerNames.last_names_unisex))


@dataclass(frozen=True)
class Document:
    type: str  # ID_CARD | RESIDENCE_PERMIT
    series: str
    number: str
    issue_date: dt.date
    issuing_body: str
    expiry_date: dt.date


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
    death_date: dt.date | None

    @property
    def full_name(self) -> str:
        return f"{self.surname} {self.name} {self.patronymic}"


@lru_cache(maxsize=1 << 16)
def given_name(salt: bytes, unit: int, slot: int, sex: str) -> str:
    """The first name of the person in (unit, slot)."""
    return rng(salt, "name", unit, slot).choice(_MALE if sex == "M" else _FEMALE)


def family_surname(salt: bytes, unit: int) -> str:
    """The male form of the surname the man, his father and his children carry."""
    return rng(salt, "surname", unit).choice(_SURNAMES_MALE)


def gendered(surname: str, sex: str) -> str:
    """The female form of a male surname: -ov/-yev + a, -oğlu -> -qızı; -li, -zadə unchanged."""
    if sex == "M":
        return surname
    if surname.endswith("oğlu"):
        return surname.removesuffix("oğlu") + "qızı"
    if surname.endswith(("ov", "ev", "yev", "in")):
        return surname + "a"
    return surname


def names(salt: bytes, unit: Unit, m: Member) -> tuple[str, str, str]:
    """(surname, name, patronymic) of a member, linked through the unit where family applies."""
    name = given_name(salt, unit.number, m.slot, m.sex)
    if m.role in (MAN, GRANDFATHER, CHILD):
        surname = gendered(family_surname(salt, unit.number), m.sex)
    else:
        own = rng(salt, "own-surname", unit.number, m.slot)
        surname = own.choice(_SURNAMES_MALE if m.sex == "M" else _SURNAMES_FEMALE)
    grandfather = unit.member(6)
    if m.role == CHILD:
        father = given_name(salt, unit.number, 0, "M")
    elif m.role == MAN and grandfather is not None and grandfather.role == GRANDFATHER:
        father = given_name(salt, unit.number, 6, "M")
    else:
        father = rng(salt, "patronymic", unit.number, m.slot).choice(_MALE)
    return surname, name, father + (" oğlu" if m.sex == "M" else " qızı")


def id_card(salt: bytes, unit: int, m: Member) -> Document:
    """A citizen's current ID card as at REFERENCE_DATE (or the last one before death).

    Issued within its 10 years of validity; from the 16th birthday on when the person was 16
    by then, otherwise a child's card that expires on the 16th birthday.
    """
    r = rng(salt, "document", unit, m.slot)
    as_of = m.death or REFERENCE_DATE
    sixteenth = add_years(m.birth, 16)
    earliest = add_years(as_of, -ID_CARD_YEARS) + DAY
    if sixteenth < as_of:
        issued = date_between(r, max(sixteenth, earliest), as_of - DAY)
        expiry = add_years(issued, ID_CARD_YEARS)
    else:
        issued = date_between(r, max(m.birth, earliest), max(m.birth, as_of - DAY))
        expiry = min(add_years(issued, ID_CARD_YEARS), sixteenth)
    body = DIN_BODY if r.random() < 0.4 else r.choice(ASAN_CENTRES)
    return Document("ID_CARD", "AA", f"{r.randrange(10**7):07d}", issued, body, expiry)
