"""Assets: vehicles (din.vehicles), real estate (emlak.real-estate), land plots (kend.land-plots).

Owners are decided in the base world at REFERENCE_DATE (inheritance is not modelled: the
deceased own nothing, and a death or a move registered later changes no ownership):
- a home belongs to its household: a married couple owns the family home jointly (1/2 each, the
  same registry number from both sides); a widowed partner or a divorced woman owns it 1/1; the
  grandparents own theirs 1/2 each (or the survivor 1/1); someone living alone owns their home
  1/1 from age 25. Owned: 78 % of family homes, 85 % of grandparents' homes, 45 % of singles'.
  The property's address is the household's base address; a flat in a city is an apartment,
  anything else a house. 6 % of adults also own a non-residential property (1/1).
- land plots belong to the same owners (same shares): 60 % of homes in a district (rayon), 5 % of
  homes in a city; plots lie in the home's district, or any rural district for city dwellers.
- a home and its plots are registered (1996 at the earliest) once every owner is 18, and a
  couple's home (the family's or the grandparents', also when a widowed or divorced partner now
  owns it alone) after their marriage.
- vehicles: 40 % of men and 12 % of women aged 18+ own 1 (15 % of them 2); plates carry the
  region code of their home district ("10-AB-123"); registered after their 18th birthday.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

from .dates import REFERENCE_DATE, add_years, date_between
from .ids import rng, seed
from .places import BAKU_PLATES, RURAL_DISTRICTS, Address, address, pick_district
from .units import (
    FAMILY_HOME,
    GRANDFATHER,
    GRANDMOTHER,
    MAN,
    MARRIED,
    PARENTS_HOME,
    WOMAN,
    Unit,
)

if TYPE_CHECKING:
    from .core import Core

APARTMENT, HOUSE, NON_RESIDENTIAL = "apartment", "house", "non_residential"
LAND_USES = ("arable", "orchard", "pasture", "hayfield", "household_plot")
VEHICLE_MODELS = (
    ("Toyota", "Camry", 2002), ("Toyota", "Prius", 2004), ("Toyota", "Land Cruiser", 1998),
    ("Hyundai", "Accent", 2000), ("Hyundai", "Elantra", 2004), ("Kia", "Rio", 2005),
    ("Mercedes-Benz", "E 200", 1996), ("BMW", "520", 1998), ("LADA", "2107", 1985),
    ("LADA", "Priora", 2008), ("Chevrolet", "Cobalt", 2012), ("Chevrolet", "Aveo", 2006),
    ("Nissan", "Qashqai", 2008), ("Ford", "Fusion", 2006), ("Opel", "Astra", 1998),
    ("Khazar", "LX", 2018), ("Kia", "Sportage", 2005), ("Hyundai", "Tucson", 2005),
)
_PLATE_LETTERS = "".join(ch for ch in string.ascii_uppercase if ch not in "IOQ")
_EARLIEST = dt.date(1996, 1, 1)
_LAST = REFERENCE_DATE - dt.timedelta(days=30)


@dataclass(frozen=True)
class Vehicle:
    make: str
    model: str
    year: int
    plate: str
    registration_date: dt.date


@dataclass(frozen=True)
class Property:
    kind: str  # apartment | house | non_residential
    address: Address
    area_m2: Decimal
    share: Fraction
    registry_number: str
    registration_date: dt.date


@dataclass(frozen=True)
class LandPlot:
    district_code: str
    district_name: str
    area_ha: Decimal
    use: str  # arable | orchard | pasture | hayfield | household_plot
    share: Fraction
    registry_number: str
    registration_date: dt.date


def owners(core: Core, unit: Unit, home: str) -> tuple[str, ...]:
    """Who owns what a household owns (base world: living at REFERENCE_DATE)."""
    living = [m for m in unit.members if m.home == home and m.death is None]
    if home == FAMILY_HOME:
        couple = [m for m in living if m.role in (MAN, WOMAN)]
        if unit.couple != MARRIED:
            couple = [m for m in couple if m.role == WOMAN]
        return tuple(m.fin for m in couple)
    if home == PARENTS_HOME:
        return tuple(m.fin for m in living if m.role in (GRANDFATHER, GRANDMOTHER))
    return tuple(m.fin for m in living if m.age >= 25)


def _registrable(unit: Unit, home: str, who: tuple[str, ...]) -> dt.date:
    """The first day a household's property can be registered to `who`: every owner an adult
    (no deed names a child, let alone someone unborn), and a couple's home after the marriage."""
    adult = max(add_years(m.birth, 18) for m in unit.members if m.fin in who)
    married = {FAMILY_HOME: unit.marriage, PARENTS_HOME: unit.parents_marriage}.get(home) or _EARLIEST
    return min(max(adult, married, _EARLIEST), _LAST)


def _located(core: Core, fin: str) -> tuple[Unit, str, str] | None:
    found = core.member(fin)
    if found is None:
        return None
    return found[0], found[1].home, found[1].fin


def real_estate(core: Core, fin: str) -> tuple[Property, ...]:
    """Registered real estate with the person's share; () for no record."""
    where = _located(core, fin)
    if where is None:
        return ()
    unit, home, fin = where
    return tuple(p for owner, p in _home_properties(core, unit.number, home) if owner == fin) + \
        _own_properties(core, unit.number, fin)


@lru_cache(maxsize=1 << 14)
def _home_properties(core: Core, number: int, home: str) -> tuple[tuple[str, Property], ...]:
    unit = core.unit(number)
    who = owners(core, unit, home)
    r = rng(core.salt, "home", number, home)
    share = {FAMILY_HOME: 0.78, PARENTS_HOME: 0.85}.get(home, 0.45)
    if not who or r.random() >= share:
        return ()
    where = core.base_address(number, home)
    flat = "mənzil" in where.text
    area = Decimal(str(round(r.uniform(35, 150) if flat else r.uniform(60, 300), 1)))
    registered = date_between(r, _registrable(unit, home, who), _LAST)
    number_text = f"{seed(core.salt, 'registry', number, home) % 10**12:012d}"
    part = Fraction(1, len(who))
    return tuple((fin, Property(APARTMENT if flat else HOUSE, where, area, part, number_text, registered))
                 for fin in who)


@lru_cache(maxsize=1 << 14)
def _own_properties(core: Core, number: int, fin: str) -> tuple[Property, ...]:
    m = core.unit(number).member(core.locate(fin)[1])
    assert m is not None
    r = rng(core.salt, "property", fin)
    if m.death is not None or m.age < 21 or r.random() >= 0.06:
        return ()
    since = max(add_years(m.birth, 21), _EARLIEST)
    if since > _LAST:
        return ()
    where = address(r, pick_district(r), office=True)
    registered = date_between(r, since, _LAST)
    return (Property(NON_RESIDENTIAL, where, Decimal(str(round(r.uniform(20, 400), 1))), Fraction(1),
                     f"{seed(core.salt, 'registry', fin) % 10**12:012d}", registered),)


def land_plots(core: Core, fin: str) -> tuple[LandPlot, ...]:
    """Agricultural land plots with the person's share; () for no record."""
    where = _located(core, fin)
    if where is None:
        return ()
    unit, home, fin = where
    return tuple(p for owner, p in _plots(core, unit.number, home) if owner == fin)


@lru_cache(maxsize=1 << 14)
def _plots(core: Core, number: int, home: str) -> tuple[tuple[str, LandPlot], ...]:
    unit = core.unit(number)
    who = owners(core, unit, home)
    district = core.base_district(number, home)
    r = rng(core.salt, "land", number, home)
    if not who or r.random() >= (0.05 if district.city else 0.60):
        return ()
    out = []
    since = _registrable(unit, home, who)
    for index in range(r.choice((1, 1, 2, 3))):
        place = district if not district.city else r.choice(RURAL_DISTRICTS)
        area = Decimal(str(round(r.uniform(0.05, 5.0), 2)))
        plot = LandPlot(place.code, place.name, area, r.choice(LAND_USES), Fraction(1, len(who)),
                        f"{seed(core.salt, 'land-registry', number, home, index) % 10**12:012d}",
                        date_between(r, since, _LAST))
        out.extend((fin, plot) for fin in who)
    return tuple(out)


def vehicles(core: Core, fin: str) -> tuple[Vehicle, ...]:
    """Vehicles registered to the person; () for no record. None registered after a death."""
    found = core.member(fin)
    if found is None:
        return ()
    unit, m = found
    death = core.death_date(m.fin)
    cars = _vehicles(core, unit.number, m.slot)
    return tuple(v for v in cars if death is None or v.registration_date < death)


@lru_cache(maxsize=1 << 14)
def _vehicles(core: Core, number: int, slot: int) -> tuple[Vehicle, ...]:
    unit = core.unit(number)
    m = unit.member(slot)
    assert m is not None
    r = rng(core.salt, "vehicles", number, slot)
    if m.death is not None or m.age < 18 or r.random() >= (0.40 if m.sex == "M" else 0.12):
        return ()
    district = core.base_district(number, m.home)
    out = []
    for _ in range(1 if r.random() < 0.85 else 2):
        make, model, since = r.choice(VEHICLE_MODELS)
        year = r.randint(since, 2024)
        lo = max(add_years(m.birth, 18), dt.date(year, 1, 1))
        if lo > _LAST:
            continue
        region = r.choice(BAKU_PLATES) if district.code == "AZ-BA" else district.plate
        plate = f"{region}-{r.choice(_PLATE_LETTERS)}{r.choice(_PLATE_LETTERS)}-{r.randrange(1, 1000):03d}"
        out.append(Vehicle(make, model, year, plate, date_between(r, lo, _LAST)))
    return tuple(sorted(out, key=lambda v: v.registration_date))
