"""Units: who the eight slots of a unit are, drawn cheaply from the unit's seed.

A unit's composition (roles, sexes, birth and death dates, citizenship, marriage dates, which
home each member belongs to) is a few dozen draws; names, documents and addresses are drawn
later, per person, only when asked for. The rules are written out in the package docstring.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from .dates import DAY, REFERENCE_DATE, add_years, age_on, date_between
from .ids import SLOTS, rng

MAN, WOMAN, CHILD, GRANDFATHER, GRANDMOTHER, SINGLE = (
    "man", "woman", "child", "grandfather", "grandmother", "single")
MARRIED, DIVORCED, UNMARRIED, NO_COUPLE = "married", "divorced", "unmarried", "none"
FAMILY_HOME, PARENTS_HOME = "F", "G"
FAMILY_KIN = "F"

FAMILY_SHARE = 0.85  # of units whose slots 0 and 1 are both held
UNMARRIED_SHARE = 0.08
DIVORCE_SHARE = 0.12
FOREIGN_FAMILY_SHARE = 0.01
FOREIGN_SINGLE_SHARE = 0.15
GRANDPARENTS_SHARE = 0.70
PARENT_MOVES_IN_SHARE = 0.60
CHILDREN_WEIGHTS = (12, 22, 36, 22, 8)  # 0..4 children
STUDYING_CHILD_SHARE = 0.55
STUDYING_SINGLE_SHARE = 0.35
SINGLE_DEATH_SHARE = 0.015
CHILD_SLOTS = (2, 3, 4, 5)
FOREIGN_CITIZENSHIPS = ("RUS", "TUR", "GEO", "IRN", "UKR", "UZB", "KAZ", "IND", "CHN", "PAK")

MAN_FIRST, MAN_LAST = dt.date(1950, 1, 1), dt.date(2001, 12, 31)
WOMAN_LAST = dt.date(2003, 12, 31)
SINGLE_FIRST, SINGLE_LAST = dt.date(1940, 1, 1), dt.date(2006, 12, 31)
LAST_DAY = REFERENCE_DATE - DAY
_CHILDREN_CUM = tuple(sum(CHILDREN_WEIGHTS[: i + 1]) for i in range(len(CHILDREN_WEIGHTS)))


@dataclass(frozen=True, slots=True)
class Member:
    """One held slot of a unit: the cheap facts every facet builds on."""

    slot: int
    fin: str
    role: str  # man | woman | child | grandfather | grandmother | single
    sex: str  # M | F
    birth: dt.date
    citizenship: str  # ISO 3166-1 alpha-3
    death: dt.date | None  # in the base world (the overlay may add one)
    home: str  # household key in the unit: "F", "G" or "S<slot>"
    kin: str  # kin group key: "F" (the family) or "S<slot>" (an unrelated single)
    studying: bool  # in full-time higher education at REFERENCE_DATE

    @property
    def foreign(self) -> bool:
        return self.citizenship != "AZE"

    @property
    def age(self) -> int:
        """Age at REFERENCE_DATE."""
        return age_on(self.birth, REFERENCE_DATE)


@dataclass(frozen=True, slots=True)
class Unit:
    number: int
    slots: tuple[Member | None, ...]  # SLOTS entries, None where the FIN starts with 0
    couple: str  # married | divorced | unmarried | none
    marriage: dt.date | None
    divorce: dt.date | None
    parents_marriage: dt.date | None  # slots 6 and 7, when both are held

    def member(self, slot: int) -> Member | None:
        return self.slots[slot]

    @property
    def members(self) -> tuple[Member, ...]:
        return tuple(m for m in self.slots if m is not None)

    @property
    def children(self) -> tuple[Member, ...]:
        return tuple(m for m in self.slots if m is not None and m.role == CHILD)


def compose(salt: bytes, number: int, fins: tuple[str | None, ...]) -> Unit:
    """The unit's composition; `fins[slot]` is None where the slot's FIN starts with 0."""
    r = rng(salt, "unit", number)
    if fins[0] is not None and fins[1] is not None and r.random() < FAMILY_SHARE:
        return _family(salt, number, fins, r)
    slots = tuple(_single(salt, number, s, fin) if fin else None for s, fin in enumerate(fins))
    return Unit(number, slots, NO_COUPLE, None, None, None)


def _single(salt: bytes, number: int, slot: int, fin: str) -> Member:
    r = rng(salt, "single", number, slot)
    sex = "M" if slot == 0 or r.random() < 0.5 else "F"
    birth = date_between(r, SINGLE_FIRST, SINGLE_LAST)
    foreign = r.random() < FOREIGN_SINGLE_SHARE
    citizenship = r.choice(FOREIGN_CITIZENSHIPS) if foreign else "AZE"
    death = None
    if r.random() < SINGLE_DEATH_SHARE:
        lo = max(add_years(birth, 18), dt.date(2000, 1, 1))
        death = date_between(r, lo, LAST_DAY) if lo < LAST_DAY else None
    studying = 18 <= age_on(birth, REFERENCE_DATE) <= 22 and r.random() < STUDYING_SINGLE_SHARE
    key = f"S{slot}"
    return Member(slot, fin, SINGLE, sex, birth, citizenship, death if not studying else None, key, key,
                  studying)


def _family(salt: bytes, number: int, fins: tuple[str | None, ...], r: random.Random) -> Unit:
    foreign = r.random() < FOREIGN_FAMILY_SHARE
    citizenship = r.choice(FOREIGN_CITIZENSHIPS) if foreign else "AZE"
    man = date_between(r, MAN_FIRST, MAN_LAST)
    woman = min(man + dt.timedelta(days=int(r.triangular(-2, 8, 3) * 365.25)), WOMAN_LAST)
    couple, marriage = (UNMARRIED, None) if r.random() < UNMARRIED_SHARE else (MARRIED, None)
    if couple == MARRIED:
        marriage = date_between(r, max(add_years(man, 22), add_years(woman, 20)),
                                add_years(max(add_years(man, 22), add_years(woman, 20)), 8))
        if marriage >= REFERENCE_DATE - dt.timedelta(days=60):
            couple, marriage = UNMARRIED, None
    births = _births(r, marriage, min(man, woman))
    divorce = None
    if couple == MARRIED and r.random() < DIVORCE_SHARE:
        assert marriage is not None
        lo = max(marriage + dt.timedelta(days=365), births[-1] + dt.timedelta(days=90) if births else marriage)
        if lo < REFERENCE_DATE - dt.timedelta(days=30):
            divorce, couple = date_between(r, lo, REFERENCE_DATE - dt.timedelta(days=30)), DIVORCED
    settled = max([marriage or add_years(man, 18), *births, *([divorce] if divorce else [])]) + DAY
    man_death = _maybe_death(r, 0.02 + (0.10 if man.year < 1960 else 0.0), settled)
    woman_death = None
    if man_death is None and couple == MARRIED:
        woman_death = _maybe_death(r, 0.015 + (0.05 if woman.year < 1960 else 0.0), settled)
    slots: list[Member | None] = [None] * SLOTS
    man_home = FAMILY_HOME if couple == MARRIED else "S0"
    slots[0] = Member(0, fins[0] or "", MAN, "M", man, citizenship, man_death, man_home, FAMILY_KIN, False)
    if couple == UNMARRIED:
        slots[1] = _single(salt, number, 1, fins[1] or "")
    else:
        slots[1] = Member(1, fins[1] or "", WOMAN, "F", woman, citizenship, woman_death, FAMILY_HOME,
                          FAMILY_KIN, False)
    for slot, birth in zip(CHILD_SLOTS, births):
        sex = "M" if r.random() < 0.5 else "F"
        studying = 18 <= age_on(birth, REFERENCE_DATE) <= 22 and r.random() < STUDYING_CHILD_SHARE
        home = FAMILY_HOME if age_on(birth, REFERENCE_DATE) < 18 or studying else f"S{slot}"
        fin = fins[slot]
        slots[slot] = Member(slot, fin, CHILD, sex, birth, citizenship, None, home, FAMILY_KIN,
                             studying) if fin else None
    for slot in CHILD_SLOTS[len(births):]:
        fin = fins[slot]
        slots[slot] = _single(salt, number, slot, fin) if fin else None
    parents_marriage = None
    if not foreign and r.random() < GRANDPARENTS_SHARE:
        parents_marriage = _grandparents(r, slots, fins, man, couple == MARRIED and man_death is None)
    else:
        for slot in (6, 7):
            fin = fins[slot]
            slots[slot] = _single(salt, number, slot, fin) if fin else None
    return Unit(number, tuple(slots), couple, marriage, divorce, parents_marriage)


def _births(r: random.Random, marriage: dt.date | None, older: dt.date) -> list[dt.date]:
    """Children's birth dates: after the marriage (both parents 20+), before the older parent is 40."""
    count = r.choices(range(len(CHILDREN_WEIGHTS)), cum_weights=_CHILDREN_CUM)[0]
    if marriage is None:
        return []
    lo, hi = marriage + dt.timedelta(days=300), min(add_years(older, 40), LAST_DAY)
    if lo > hi:
        return []
    out: list[dt.date] = []
    for day in sorted(date_between(r, lo, hi) for _ in range(count)):
        if not out or (day - out[-1]).days >= 300:
            out.append(day)
    return out


def _maybe_death(r: random.Random, share: float, after: dt.date) -> dt.date | None:
    hit = r.random() < share
    return date_between(r, after, LAST_DAY) if hit and after < LAST_DAY else None


def _grandparents(r: random.Random, slots: list[Member | None], fins: tuple[str | None, ...],
                  man: dt.date, family_home_open: bool) -> dt.date | None:
    """Slots 6 and 7: the man's parents, with their own home (or a widowed one living with him)."""
    mother = man - dt.timedelta(days=int(r.uniform(20, 36) * 365.25))
    father = mother - dt.timedelta(days=int(r.triangular(-2, 8, 3) * 365.25))
    father = max(min(father, add_years(man, -22)), add_years(man, -40))  # 22-40 years older than the son
    hi = man - dt.timedelta(days=280)
    lo = max(add_years(father, 20), add_years(mother, 18), add_years(hi, -6))
    marriage = date_between(r, lo, hi)
    deaths = []
    for birth in (father, mother):
        age = age_on(birth, REFERENCE_DATE)
        share = 1.0 if age >= 98 else min(0.92, max(0.03, (age - 60) / 30))
        deaths.append(_maybe_death(r, share, max(add_years(man, 1), add_years(birth, 45))))
    held = [fins[6] is not None, fins[7] is not None]
    living = [held[i] and deaths[i] is None for i in (0, 1)]
    moves_in = r.random() < PARENT_MOVES_IN_SHARE
    home = PARENTS_HOME
    if family_home_open and sum(living) == 1 and moves_in:
        alone = father if living[0] else mother
        home = FAMILY_HOME if age_on(alone, REFERENCE_DATE) >= 75 else PARENTS_HOME
    for slot, role, sex, birth, death in ((6, GRANDFATHER, "M", father, deaths[0]),
                                          (7, GRANDMOTHER, "F", mother, deaths[1])):
        fin = fins[slot]
        slots[slot] = Member(slot, fin, role, sex, birth, "AZE", death, home, FAMILY_KIN, False) if fin else None
    return marriage if all(held) else None
