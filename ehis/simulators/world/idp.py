"""Refugee and IDP status (qmkdk.idp-status), held by kin groups.

A kin group is the family of a unit (the man, the woman, their children and the man's parents)
or one unrelated single. 7 % of kin groups of citizens hold a status for all their members:
"idp" (internally displaced, from a Karabakh district, since 1992-1993) or, for 12 % of them
when the eldest member was born before 1975, "refugee" (from Armenia, since 1988-1990). Members
born after that date hold it too, since their birth. Foreigners: no record. The temporary
residence is the member's household address; family members are the group's LIVING members.
`change_idp_status` (overlay) sets or withdraws the status of the whole group.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dates import date_between
from .ids import chance, rng
from .overlay import IdpChange
from .places import ARMENIA_REGIONS, KARABAKH_DISTRICTS, Address

if TYPE_CHECKING:
    from .core import Core
    from .units import Member, Unit

IDP, REFUGEE = "idp", "refugee"
IDP_SHARE = 0.07


@dataclass(frozen=True)
class IdpStatus:
    status: str  # idp | refugee
    region_of_origin: str
    since: dt.date
    temporary_residence: Address
    family_members: tuple[str, ...]  # FINs of the kin group's living members


def kin_id(unit: Unit, m: Member) -> str:
    return f"K{unit.number:010d}{m.kin}"


def kin_members(unit: Unit, m: Member) -> tuple[Member, ...]:
    return tuple(x for x in unit.members if x.kin == m.kin)


def base_status(core: Core, unit: Unit, m: Member) -> IdpChange | None:
    """The kin group's status in the base world."""
    group = kin_members(unit, m)
    if any(x.foreign for x in group) or chance(core.salt, "idp", unit.number, m.kin) >= IDP_SHARE:
        return None
    r = rng(core.salt, "idp-detail", unit.number, m.kin)
    eldest = min(x.birth for x in group)
    if eldest.year < 1975 and r.random() < 0.12:
        region = f"Ermənistan, {r.choice(ARMENIA_REGIONS)}"
        return IdpChange(REFUGEE, region, date_between(r, dt.date(1988, 1, 1), dt.date(1990, 12, 31)))
    return IdpChange(IDP, r.choice(KARABAKH_DISTRICTS), date_between(r, dt.date(1992, 1, 1), dt.date(1993, 12, 31)))


def idp_status(core: Core, fin: str) -> IdpStatus | None:
    """The person's status; None for no record (none, withdrawn, foreigner, deceased, nobody)."""
    found = core.member(fin)
    if found is None:
        return None
    unit, m = found
    if not core.living(m):
        return None
    change = core.overlay.idp.get(kin_id(unit, m))
    state = change if change is not None else base_status(core, unit, m)
    if state is None or state.status is None or state.region is None:
        return None
    living = tuple(x.fin for x in kin_members(unit, m) if core.living(x))
    return IdpStatus(state.status, state.region, max(state.since, m.birth), core.home_address(unit, m.home),
                     living)
