"""Civil status acts the Ministry of Justice keeps (edliyye.civil-acts).

Rules: citizens have a birth act; foreigners have none (their births and marriages were
registered abroad), only a death act when they die here. A married or divorced couple of citizens has one
marriage act (the same record, number and all, from both sides); a divorced couple also one
divorce act; the grandparents have a marriage act when both are held. A death (base or
registered through the overlay) has a death act. Parents see their children's birth acts.
Act numbers are `<kind>-<year>-<7 digits>` with kind AD (birth), NK (marriage), NP (divorce),
OL (death), drawn from the act's own seed, so they are stable. The registry office is the one of
the district of the home concerned (the family home for the couple and their children).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .households import children_of, parents_of, partner
from .ids import rng, seed
from .places import pick_district, registry_office
from .units import CHILD, DIVORCED, FAMILY_HOME, MAN, PARENTS_HOME, WOMAN, Member, Unit

if TYPE_CHECKING:
    from .core import Core

BIRTH, MARRIAGE, DIVORCE, DEATH = "birth", "marriage", "divorce", "death"
_PREFIX = {BIRTH: "AD", MARRIAGE: "NK", DIVORCE: "NP", DEATH: "OL"}


@dataclass(frozen=True)
class CivilAct:
    kind: str  # birth | marriage | divorce | death
    number: str
    date: dt.date  # the day of the event
    registry_office: str
    subject: str  # the child (birth), the husband (marriage, divorce), the deceased (death)
    partner: str | None = None  # the wife (marriage, divorce)
    father: str | None = None  # birth acts: the parents when linked
    mother: str | None = None

    def other_party(self, fin: str) -> str | None:
        """The partner of `fin` in a marriage or divorce act."""
        return self.partner if fin == self.subject else self.subject


@dataclass(frozen=True)
class CivilActs:
    fin: str
    birth: CivilAct | None
    marriages: tuple[CivilAct, ...]
    divorces: tuple[CivilAct, ...]
    death: CivilAct | None
    children_births: tuple[CivilAct, ...]

    @property
    def children(self) -> tuple[str, ...]:
        return tuple(a.subject for a in self.children_births)


def civil_acts(core: Core, fin: str) -> CivilActs | None:
    """The person's acts; None for nobody; for foreigners only a death act (if any)."""
    found = core.member(fin)
    if found is None:
        return None
    unit, m = found
    death_day = core.death_date(m.fin)
    death = _act(core, unit, DEATH, death_day, m.home, m.fin) if death_day else None
    if m.foreign:
        return CivilActs(m.fin, None, (), (), death, ())
    marriages: list[CivilAct] = []
    divorces: list[CivilAct] = []
    other = partner(unit, m)
    if other is not None:
        husband, wife = (m, other) if m.sex == "M" else (other, m)
        if m.role in (MAN, WOMAN):
            assert unit.marriage is not None
            marriages.append(_act(core, unit, MARRIAGE, unit.marriage, FAMILY_HOME, husband.fin, wife.fin))
            if unit.couple == DIVORCED and unit.divorce is not None:
                divorces.append(_act(core, unit, DIVORCE, unit.divorce, FAMILY_HOME, husband.fin, wife.fin))
        elif unit.parents_marriage is not None:
            marriages.append(_act(core, unit, MARRIAGE, unit.parents_marriage, PARENTS_HOME, husband.fin,
                                  wife.fin))
    kids = tuple(birth_act(core, unit, c) for c in children_of(unit, m))
    return CivilActs(m.fin, birth_act(core, unit, m), tuple(marriages), tuple(divorces), death, kids)


def birth_act(core: Core, unit: Unit, m: Member) -> CivilAct:
    """The birth act of a citizen: registered where the parents' home is, when they are linked."""
    father, mother = parents_of(unit, m)
    if m.role == CHILD:
        office_home = FAMILY_HOME
    elif m.role == MAN and (father or mother):
        office_home = PARENTS_HOME
    else:
        office_home = None
    if office_home is not None:
        office = registry_office(core.base_district(unit.number, office_home))
    else:
        office = registry_office(pick_district(rng(core.salt, "birth-office", unit.number, m.slot)))
    return CivilAct(BIRTH, _number(core.salt, BIRTH, m.birth, unit.number, m.slot), m.birth, office, m.fin,
                    father=father.fin if father else None, mother=mother.fin if mother else None)


def _act(core: Core, unit: Unit, kind: str, day: dt.date, home: str, subject: str,
         other: str | None = None) -> CivilAct:
    district = core.base_district(unit.number, home)
    key = (unit.number, home) if kind in (MARRIAGE, DIVORCE) else (subject, day)
    return CivilAct(kind, _number(core.salt, kind, day, *key), day, registry_office(district), subject, other)


def _number(salt: bytes, kind: str, day: dt.date, *key: object) -> str:
    return f"{_PREFIX[kind]}-{day.year}-{seed(salt, 'act', kind, *key) % 10**7:07d}"

