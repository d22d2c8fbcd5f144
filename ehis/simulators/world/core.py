"""The core of the world: the FIN <-> (unit, slot) mapping, cached units, and the person record.

Facet modules take a `Core` and build on `member()`, `death_date()` and `home_address()`; the
`World` facade (world.py) adds one method per facet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import lru_cache

from . import migration, people
from .dates import REFERENCE_DATE
from .ids import (
    SLOTS,
    UNITS,
    Permutation,
    fin_to_index,
    held,
    index_to_fin,
    normalize_fin,
    rng,
)
from .overlay import Overlay
from .people import Person
from .places import (
    DISTRICTS_BY_CODE,
    Address,
    District,
    address,
    near_district,
    pick_district,
)
from .units import FAMILY_HOME, Member, Unit, compose

DEFAULT_SALT = "ehis-world-v1"
UNIT_CACHE = 1 << 15
PERSON_CACHE = 1 << 16


class Core:
    """Identity space, unit composition and the person record, with the overlay applied."""

    def __init__(self, salt: str = DEFAULT_SALT) -> None:
        self.salt = (salt + ":").encode()
        self.overlay = Overlay()
        self._fins = Permutation(SLOTS * UNITS, self.salt + b"fin-permutation")
        self.entrepreneurs = Permutation(UNITS, self.salt + b"entrepreneurs")  # see taxpayers.py
        self._locate = lru_cache(maxsize=PERSON_CACHE)(self._place)
        self.base_unit = lru_cache(maxsize=UNIT_CACHE)(self._compose)
        self._person = lru_cache(maxsize=PERSON_CACHE)(self._build_person)
        self.base_address = lru_cache(maxsize=PERSON_CACHE)(self._draw_address)

    # identity space -------------------------------------------------------------------------
    def locate(self, fin: str) -> tuple[int, int]:
        """(unit, slot) of a FIN (ValueError when malformed); FINs starting with 0 included."""
        return self._locate(normalize_fin(fin))

    def _place(self, fin: str) -> tuple[int, int]:
        unit, slot = divmod(self._fins.forward(fin_to_index(fin)), SLOTS)
        return unit, slot

    def fin_at(self, unit: int, slot: int) -> str:
        """The FIN in (unit, slot): the inverse permutation."""
        if not (0 <= unit < UNITS and 0 <= slot < SLOTS):
            raise ValueError("no such unit or slot")
        return index_to_fin(self._fins.inverse(unit * SLOTS + slot))

    def unit_members(self, number: int) -> tuple[str, ...]:
        """The held FINs of unit `number`, by slot (related or not: see the unit's roles)."""
        return tuple(m.fin for m in self.unit(number).members)

    def unit(self, number: int) -> Unit:
        """The unit as it is now: the base composition with births, marriages and divorces applied."""
        base = self.base_unit(number)
        change = self.overlay.units.get(number)
        if change is None:
            return base
        slots = tuple(change.slots.get(s, m) for s, m in enumerate(base.slots))
        return dataclasses.replace(base, slots=slots, **change.fields)

    def _compose(self, number: int) -> Unit:
        fins = tuple(self.fin_at(number, s) for s in range(SLOTS))
        return compose(self.salt, number, tuple(f if held(f) else None for f in fins))

    def member(self, fin: str) -> tuple[Unit, Member] | None:
        """The unit and member a FIN stands for; None when no registry holds it."""
        fin = normalize_fin(fin)
        if not held(fin) and fin not in self.overlay.born:
            return None
        number, slot = self.locate(fin)
        unit = self.unit(number)
        m = unit.member(slot)
        assert m is not None and m.fin == fin
        return unit, m

    def changed(self, unit: Unit, m: Member) -> bool:
        """Whether the overlay replaced or added this member (a newborn, a bride): never cached."""
        change = self.overlay.units.get(unit.number)
        return change is not None and m.slot in change.slots

    # overlay-aware basics -------------------------------------------------------------------
    def death_date(self, fin: str) -> dt.date | None:
        """The death date, base or registered since (None while alive or when nobody)."""
        found = self.member(fin)
        if found is None:
            return None
        return found[1].death or self.overlay.deaths.get(found[1].fin)

    def alive(self, m: Member, on: dt.date = REFERENCE_DATE) -> bool:
        """Whether a member is alive on a day, with overlay deaths (a death day counts as dead)."""
        death = m.death or self.overlay.deaths.get(m.fin)
        return death is None or death > on

    def living(self, m: Member) -> bool:
        """Alive in the current state of the world (no death at any date)."""
        return m.death is None and m.fin not in self.overlay.deaths

    def household_id(self, unit: int, home: str) -> str:
        return f"H{unit:010d}{home}"

    def home_address(self, unit: Unit, home: str) -> Address:
        """The address of a household, after any move registered in the overlay."""
        moved = self.overlay.addresses.get(self.household_id(unit.number, home))
        return moved or self.base_address(unit.number, home)

    def base_district(self, unit: int, home: str) -> District:
        return DISTRICTS_BY_CODE[self.base_address(unit, home).district_code]

    def _draw_address(self, unit: int, home: str) -> Address:
        """Family homes anywhere (weighted); parents and grown-up children often nearby."""
        r = rng(self.salt, "address", unit, home)
        if home == FAMILY_HOME:
            district = pick_district(r)
        else:
            district = near_district(r, self.base_district(unit, FAMILY_HOME), 0.6)
        return address(r, district)

    # din.person -----------------------------------------------------------------------------
    def person(self, fin: str) -> Person | None:
        """The registry record; None when no registry holds the FIN (ValueError if malformed)."""
        found = self.member(fin)
        if found is None:
            return None
        unit, m = found
        base = self._build_person(unit.number, m.slot) if self.changed(unit, m) else self._person(unit.number, m.slot)
        changes: dict[str, object] = {}
        death = self.overlay.deaths.get(m.fin)
        if death is not None and base.death_date is None:
            changes["death_date"] = death
        current = self.home_address(unit, m.home)
        if current != base.address:
            changes["address"] = current
        if m.foreign and (m.fin in self.overlay.permits or m.fin in self.overlay.permit_ends):
            permit = migration.residence_permit(self, m.fin)
            if permit is not None:
                changes["document"] = permit.document()
        return dataclasses.replace(base, **changes) if changes else base

    def _build_person(self, number: int, slot: int) -> Person:
        unit = self.unit(number)
        m = unit.member(slot)
        assert m is not None
        surname, name, patronymic = people.names(self.salt, unit, m)
        if m.foreign:
            document = migration.base_residence_permit(self, unit, m).document()
        else:
            document = people.id_card(self.salt, number, m)
        return Person(m.fin, surname, name, patronymic, m.birth, m.sex, m.citizenship, document,
                      self.base_address(number, m.home), m.death)
