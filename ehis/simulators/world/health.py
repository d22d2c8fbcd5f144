"""Referrals issued by medical institutions (sehiyye.referrals).

Rule: the share of people with referrals grows with age (3 % below 50, up to about 28 % at 90);
children have one in 2 % of cases (a disability assessment). One or two referrals, issued in
the three years before REFERENCE_DATE and never after a death (overlay deaths included).
A sanatorium referral is valid 90 days, a disability assessment referral 30 days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .dates import REFERENCE_DATE, date_between
from .ids import rng, seed
from .places import local_place

if TYPE_CHECKING:
    from .core import Core

SANATORIUM, DISABILITY_ASSESSMENT = "sanatorium", "disability_assessment"
_ADULT_CODES = {SANATORIUM: ("I10", "I25.1", "M54.5", "M17.0", "J45.0", "K29.5", "E11.9", "G43.9"),
                DISABILITY_ASSESSMENT: ("I69.4", "E11.5", "H54.0", "M16.0", "C50.9", "I63.9", "F20.0")}
_CHILD_CODES = ("G80.0", "F84.0", "Q90.0", "H90.3", "E10.9")
_INSTITUTIONS = ("{place} {n} saylı poliklinika", "{place} {n} saylı xəstəxana",
                 "{place} Mərkəzi rayon xəstəxanası")
_NATIONAL = ("Respublika Klinik Xəstəxanası", "Mərkəzi Klinik Xəstəxana", "Milli Onkologiya Mərkəzi")
_VALID_DAYS = {SANATORIUM: 90, DISABILITY_ASSESSMENT: 30}


@dataclass(frozen=True)
class Referral:
    number: str
    kind: str  # sanatorium | disability_assessment
    institution: str
    icd10: str
    date: dt.date
    valid_until: dt.date


def referrals(core: Core, fin: str) -> tuple[Referral, ...]:
    """Referrals of the person, oldest first; () for no record."""
    found = core.member(fin)
    if found is None:
        return ()
    death = core.death_date(found[1].fin)
    issued = core.overlay.referrals.get(found[1].fin, ())
    return tuple(x for x in _referrals(core, found[0].number, found[1].slot) + issued
                 if death is None or x.date < death)


def new_referral(core: Core, fin: str, day: dt.date, kind: str | None = None, icd10: str | None = None,
                 institution: str | None = None) -> Referral:
    """A referral issued on `day` (the overlay's): drawn like the base ones, numbered apart from them."""
    found = core.member(fin)
    if found is None:
        raise ValueError("no person with this FIN")
    unit, m = found
    count = len(core.overlay.referrals.get(m.fin, ()))
    r = rng(core.salt, "issued-referral", m.fin, count, day)
    child = (day - m.birth).days < 18 * 365
    kind = kind or (DISABILITY_ASSESSMENT if child or r.random() < 0.4 else SANATORIUM)
    if kind not in _VALID_DAYS:
        raise ValueError(f"a referral's kind is {' or '.join(_VALID_DAYS)}")
    district = core.base_district(unit.number, m.home)
    code = icd10 or r.choice(_CHILD_CODES if child else _ADULT_CODES[kind])
    place = institution or r.choice(_INSTITUTIONS).format(place=local_place(district, r), n=r.randint(1, 40))
    number = f"ST{day.year}{seed(core.salt, 'issued-referral', m.fin, count, day) % 10**6:06d}"
    return Referral(number, kind, place, code, day, day + dt.timedelta(days=_VALID_DAYS[kind]))


@lru_cache(maxsize=1 << 14)
def _referrals(core: Core, number: int, slot: int) -> tuple[Referral, ...]:
    m = core.unit(number).member(slot)
    assert m is not None
    r = rng(core.salt, "referrals", number, slot)
    child = m.age < 18
    share = 0.02 if child else 0.03 + 0.25 * max(0, m.age - 50) / 40
    if r.random() >= share:
        return ()
    district = core.base_district(number, m.home)
    out = []
    first = max(REFERENCE_DATE - dt.timedelta(days=3 * 365), m.birth + dt.timedelta(days=30))
    for index in range(1 if r.random() < 0.8 else 2):
        if first >= REFERENCE_DATE:
            break
        kind = DISABILITY_ASSESSMENT if child or r.random() < 0.4 else SANATORIUM
        code = r.choice(_CHILD_CODES if child else _ADULT_CODES[kind])
        template = r.choice(_INSTITUTIONS)
        institution = (r.choice(_NATIONAL) if r.random() < 0.15
                       else template.format(place=local_place(district, r), n=r.randint(1, 40)))
        day = date_between(r, first, REFERENCE_DATE - dt.timedelta(days=1))
        if m.death is not None and day >= m.death:
            continue
        number_text = f"ST{day.year}{seed(core.salt, 'referral', number, slot, index) % 10**6:06d}"
        out.append(Referral(number_text, kind, institution, code, day, day + dt.timedelta(days=_VALID_DAYS[kind])))
    return tuple(sorted(out, key=lambda x: x.date))


