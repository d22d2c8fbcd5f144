"""Taxpayers (vergiler.taxpayer): every well-formed VÖEN not starting with 0 is one.

Legal entities (last digit 1) get a company drawn from the VÖEN's seed; their head is the
slot-0 man of a unit chosen from that seed (walking on until he is held, living and adult).
Natural persons (last digit 2) are individual entrepreneurs: the 9-digit body is mapped by a
keyed permutation to a unit, and the entrepreneur is that unit's first held, living adult in the
slot order 0, 1, 6, 7, 2, 3, 4, 5 — so `voen_of_entrepreneur(fin)` can answer the other way.
Employers are drawn from a pool of EMPLOYERS legal entities, all active and registered by the end of
1999, before any job of the world starts (work.py's records begin in 2000).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from . import contacts
from .dates import REFERENCE_DATE, add_years, date_between
from .ids import UNITS, VOEN_BODIES, VOEN_FIRST, chance, normalize_voen, rng, seed
from .places import Address, address, pick_district

if TYPE_CHECKING:
    from .core import Core
    from .units import Member

ACTIVE, SUSPENDED, LIQUIDATED = "active", "suspended", "liquidated"
LEGAL_ENTITY, NATURAL_PERSON = "legal_entity", "natural_person"
EMPLOYERS = 20_000
EMPLOYERS_REGISTERED_BY = dt.date(1999, 12, 31)  # before the first job (work.RECORDS_START): none predates its employer
ENTREPRENEUR_FORM = "FS"  # fərdi sahibkar (individual entrepreneur)
# MMC limited liability company, QSC closed and ASC open joint-stock company, PHŞ public legal entity
LEGAL_FORMS = (("MMC", 70), ("QSC", 10), ("ASC", 8), ("PHŞ", 5), ("İB", 7))
_FORMS = [f for f, _ in LEGAL_FORMS]
_FORM_WEIGHTS = [w for _, w in LEGAL_FORMS]
_PREFIXES = ("Xəzər", "Abşeron", "Qafqaz", "Azər", "Günəş", "Şirvan", "Kür", "Araz", "Ulduz", "Vətən",
             "Yaşıl Vadi", "Bakı", "Gəncə", "Nur", "Sahil", "İnam", "Mərkəz", "Körpü", "Zirvə", "Alov",
             "Dalğa", "Çinar", "Əmək", "Təbriz", "Qızıl Körpü", "Atəşgah", "Xan", "Ləman")
_ACTIVITIES = ("İnşaat", "Ticarət", "Logistika", "Servis", "Qida", "Tekstil", "Enerji", "Aqro",
               "Tikinti", "Media", "Farm", "Texnologiya", "Nəqliyyat", "Turizm", "Mebel", "Təmir",
               "Konsaltinq", "Tibb Mərkəzi", "Təhsil Mərkəzi", "Market", "Çörək", "Avto")
_ENTREPRENEUR_ORDER = (0, 1, 6, 7, 2, 3, 4, 5)


@dataclass(frozen=True)
class Taxpayer:
    voen: str
    kind: str  # legal_entity | natural_person
    name: str
    legal_form: str  # MMC, QSC, ASC, PHŞ, İB; FS for an individual entrepreneur
    legal_address: Address
    actual_address: Address
    phones: tuple[str, ...]
    status: str  # active | suspended | liquidated
    registration_date: dt.date
    head_fin: str | None  # None only for a natural-person VÖEN whose unit has no living adult
    sun: str  # insurer's account number (10 digits)


def status(salt: bytes, voen: str) -> str:
    """The taxpayer's status: active 85 %, suspended 7 %, liquidated 8 % (cheap, no record built)."""
    u = chance(salt, "tax-status", voen)
    return ACTIVE if u < 0.85 else SUSPENDED if u < 0.92 else LIQUIDATED


@lru_cache(maxsize=EMPLOYERS)
def _employer(salt: bytes, k: int) -> str:
    attempt = 0
    while True:
        body = VOEN_FIRST + seed(salt, "employer", k, attempt) % VOEN_BODIES
        voen = f"{body:09d}1"
        if status(salt, voen) == ACTIVE:
            return voen
        attempt += 1


@lru_cache(maxsize=4)
def _employers(salt: bytes) -> frozenset[str]:
    """The whole employer pool (built once, about 0.1 s): its companies predate every job."""
    return frozenset(_employer(salt, k) for k in range(EMPLOYERS))


def employer_voen(core: Core, k: int) -> str:
    """The VÖEN of employer number k in [0, EMPLOYERS): an active legal entity."""
    return _employer(core.salt, k % EMPLOYERS)


def _suitable(m: Member | None) -> bool:
    """Held, alive and adult in the base world (so the mapping never depends on the overlay)."""
    return m is not None and m.death is None and m.age >= 18


def _entrepreneur_slot(core: Core, unit_number: int) -> int | None:
    unit = core.base_unit(unit_number)  # never the overlay: the mapping is fixed
    for slot in _ENTREPRENEUR_ORDER:
        if _suitable(unit.member(slot)):
            return slot
    return None


def voen_of_entrepreneur(core: Core, fin: str) -> str | None:
    """The natural-person VÖEN of a person who is an individual entrepreneur, else None."""
    found = core.member(fin)
    if found is None:
        return None
    unit, m = found
    index = core.entrepreneurs.inverse(unit.number)
    if index >= VOEN_BODIES or _entrepreneur_slot(core, unit.number) != m.slot:
        return None
    return f"{VOEN_FIRST + index:09d}2"


def taxpayer(core: Core, voen: str) -> Taxpayer | None:
    """The taxpayer record (None for a VÖEN starting with 0; ValueError when malformed)."""
    voen = normalize_voen(voen)
    if voen.startswith("0"):
        return None
    return _legal(core, voen) if voen.endswith("1") else _natural(core, voen)


@lru_cache(maxsize=1 << 14)
def _legal(core: Core, voen: str) -> Taxpayer:
    r = rng(core.salt, "company", voen)
    form = r.choices(_FORMS, weights=_FORM_WEIGHTS)[0]
    name = f'"{r.choice(_PREFIXES)} {r.choice(_ACTIVITIES)}" {form}'
    legal = address(r, pick_district(r), office=True)
    actual = legal if r.random() < 0.7 else address(r, pick_district(r), office=True)
    latest = EMPLOYERS_REGISTERED_BY if voen in _employers(core.salt) else REFERENCE_DATE - dt.timedelta(days=30)
    registered = date_between(r, dt.date(1996, 1, 1), latest)
    return Taxpayer(voen, LEGAL_ENTITY, name, form, legal, actual, _phones(r, legal), status(core.salt, voen),
                    registered, _head(core, voen), _sun(core.salt, voen))


def _head(core: Core, voen: str) -> str:
    attempt = 0
    while True:
        unit = core.unit(seed(core.salt, "head", voen, attempt) % UNITS)
        m = unit.member(0)
        if _suitable(m):
            assert m is not None
            return m.fin
        attempt += 1


def _natural(core: Core, voen: str) -> Taxpayer:
    unit_number = core.entrepreneurs.forward(int(voen[:9]) - VOEN_FIRST)
    slot = _entrepreneur_slot(core, unit_number)
    r = rng(core.salt, "entrepreneur", voen)
    if slot is None:  # a unit without a living adult (odds about 1e-11): a closed record
        legal = address(r, pick_district(r))
        return Taxpayer(voen, NATURAL_PERSON, "-", ENTREPRENEUR_FORM, legal, legal, (), LIQUIDATED,
                        date_between(r, dt.date(1996, 1, 1), REFERENCE_DATE), None, _sun(core.salt, voen))
    fin = core.fin_at(unit_number, slot)
    person = core.person(fin)
    assert person is not None
    legal = person.address
    actual = legal if r.random() < 0.6 else address(r, pick_district(r), office=True)
    lo = max(add_years(person.birth_date, 18), dt.date(1996, 1, 1))
    registered = date_between(r, lo, max(lo, REFERENCE_DATE - dt.timedelta(days=30)))
    phones = tuple(n.number for n in contacts.mobile_numbers(core, fin)[:1]) or _phones(r, legal)
    return Taxpayer(voen, NATURAL_PERSON, person.full_name, ENTREPRENEUR_FORM, legal, actual, phones,
                    status(core.salt, voen), registered, fin, _sun(core.salt, voen))


def _phones(r: random.Random, legal: Address) -> tuple[str, ...]:
    """Landlines in the three big cities, mobile numbers elsewhere."""
    area = {"AZ-BA": "12", "AZ-GA": "22", "AZ-SM": "18"}.get(legal.district_code)
    count = 1 if r.random() < 0.6 else 2
    out = []
    for _ in range(count):
        prefix = area or r.choice(contacts.PREFIXES)
        out.append(f"+994{prefix}{r.randrange(10**7):07d}")
    return tuple(out)


def _sun(salt: bytes, voen: str) -> str:
    return f"{10**9 + seed(salt, 'sun', voen) % (9 * 10**9):010d}"
