"""Family links (din/edliyye) and households (yih.household), with the overlay applied.

A household is one home key of one unit ("F" the family home, "G" the grandparents' home,
"S<slot>" someone living alone). Its members are the living members of the unit with that home;
its head is the first of them in the order man, woman, grandfather, grandmother, eldest child,
single. Relations are relative to the head: spouse (the married partner), child (the head's
child), parent (the head's parent), other (anyone else, e.g. a widowed mother-in-law when the
woman heads the home after the man's death, or siblings when a child heads it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dates import add_years
from .places import Address
from .units import (
    CHILD,
    DIVORCED,
    FAMILY_HOME,
    GRANDFATHER,
    GRANDMOTHER,
    MAN,
    MARRIED,
    PARENTS_HOME,
    SINGLE,
    UNMARRIED,
    WOMAN,
    Member,
    Unit,
)

if TYPE_CHECKING:
    from .core import Core

HEAD, SPOUSE, CHILD_REL, PARENT, OTHER = "head", "spouse", "child", "parent", "other"
_PRIORITY = {MAN: 0, WOMAN: 1, GRANDFATHER: 2, GRANDMOTHER: 3, CHILD: 4, SINGLE: 5}


@dataclass(frozen=True)
class Family:
    fin: str
    marital_status: str  # married | divorced | widowed | single
    spouse: str | None  # only while married and both alive
    children: tuple[str, ...]
    father: str | None  # None when not linked
    mother: str | None


@dataclass(frozen=True)
class Household:
    id: str
    address: Address
    head: str
    members: tuple[tuple[str, str], ...]  # (FIN, relation), head first then by slot


def partner(unit: Unit, m: Member) -> Member | None:
    """The member this one married (whatever became of the marriage), if held."""
    if m.role == MAN and unit.couple != UNMARRIED:
        other = unit.member(1)
        return other if other is not None and other.role == WOMAN else None
    if m.role == WOMAN:
        return unit.member(0)
    if m.role in (GRANDFATHER, GRANDMOTHER) and unit.parents_marriage is not None:
        return unit.member(7 if m.role == GRANDFATHER else 6)
    return None


def children_of(unit: Unit, m: Member) -> tuple[Member, ...]:
    if m.role == WOMAN or (m.role == MAN and unit.couple in (MARRIED, DIVORCED)):
        return unit.children
    man = unit.member(0)
    if m.role in (GRANDFATHER, GRANDMOTHER) and man is not None and man.role == MAN:
        return (man,)
    return ()


def parents_of(unit: Unit, m: Member) -> tuple[Member | None, Member | None]:
    if m.role == CHILD:
        mother = unit.member(1)
        return unit.member(0), mother if mother is not None and mother.role == WOMAN else None
    if m.role == MAN:
        father, mother = unit.member(6), unit.member(7)
        return (father if father is not None and father.role == GRANDFATHER else None,
                mother if mother is not None and mother.role == GRANDMOTHER else None)
    return None, None


def family(core: Core, fin: str) -> Family | None:
    found = core.member(fin)
    if found is None:
        return None
    unit, m = found
    other = partner(unit, m)
    father, mother = parents_of(unit, m)
    status, spouse = "single", None
    if other is not None:
        if m.role in (MAN, WOMAN) and unit.couple == DIVORCED:
            status = "divorced"
        elif core.living(m) and core.living(other):
            status, spouse = "married", other.fin
        else:
            status = "widowed"
    elif m.role in (GRANDFATHER, GRANDMOTHER):
        status = "widowed"  # the partner is in no registry: counted as gone before it began
    return Family(m.fin, status, spouse, tuple(c.fin for c in children_of(unit, m)),
                  father.fin if father else None, mother.fin if mother else None)


def household(core: Core, fin: str) -> Household | None:
    """The person's household; None for nobody and for the deceased (they belong to none)."""
    found = core.member(fin)
    if found is None or not core.living(found[1]):
        return None
    unit, m = found
    members = [x for x in unit.members if x.home == m.home and core.living(x)]
    head = min(members, key=lambda x: (_PRIORITY[x.role], x.birth, x.slot))
    ordered = [head] + sorted((x for x in members if x is not head), key=lambda x: x.slot)
    return Household(core.household_id(unit.number, m.home), core.home_address(unit, m.home), head.fin,
                     tuple((x.fin, relation(unit, head, x)) for x in ordered))


def relation(unit: Unit, head: Member, x: Member) -> str:
    if x is head:
        return HEAD
    if partner(unit, head) is x:  # partners sharing a home are married (the divorced live apart)
        return SPOUSE
    if x in children_of(unit, head):
        return CHILD_REL
    if head in children_of(unit, x):
        return PARENT
    return OTHER


def formed(unit: Unit, home: str, head: Member) -> dt.date:
    """When the household was set up (for utility subscriptions): marriage, or adulthood."""
    if home == FAMILY_HOME and unit.marriage is not None:
        return unit.marriage
    if home == PARENTS_HOME and unit.parents_marriage is not None:
        return unit.parents_marriage
    return add_years(head.birth, 18)
