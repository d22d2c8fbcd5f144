"""Conscription (sshcdx.conscription-status) and service records (mudafie.service-record).

Only male citizens are concerned. Conscription status exists ONLY for living men aged 18-35 at
REFERENCE_DATE:
- studying full-time at REFERENCE_DATE: deferred, reason "education", until the expected end;
- otherwise "served" when they have a service record (below), else exempt (reason "health",
  8 %), deferred (reason "family", until 6-24 months after REFERENCE_DATE, 8 %), or registered
  (waiting to be called up).
Service record: ONLY men who served: 62 % of the men aged 18-35 who are not studying and whose
service would have ended before REFERENCE_DATE, 65 % of older men. Conscript service starts
between 18 and 20 (after higher education, if any, ending before) and lasts 18 months (12 after
higher education; 3 % are discharged early for health); it always ended before REFERENCE_DATE.
3 % of those who served stayed on as contract servicemen (a second period, open while they are
under the contract age limit of 45 at REFERENCE_DATE, else ended the day before they turned 45,
discharge reason "age_limit"; a man who reached the limit before the contract began has none).
6 % of men who served and were 20-45 in 2020 were mobilised from 28 September 2020 for about
three months. COMBAT VETERAN: any period overlapping the first Karabakh war
(1991-09-01..1994-05-12) or the 44-day war (2020-09-27..2020-11-10).
A death ends the record: no period starts after it, and a period running on the day of death
(overlay deaths included) ends that day with discharge reason "death".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from . import education
from .dates import DAY, REFERENCE_DATE, add_months, add_years, age_on, date_between
from .ids import rng

if TYPE_CHECKING:
    from .core import Core

REGISTERED, DEFERRED, SERVED, EXEMPT = "registered", "deferred", "served", "exempt"
UNIT_TYPES = ("motor_rifle", "artillery", "tank", "air_defence", "signals", "navy", "engineers",
              "border_troops")
WARS = ((dt.date(1991, 9, 1), dt.date(1994, 5, 12)), (dt.date(2020, 9, 27), dt.date(2020, 11, 10)))
MOBILISATION = dt.date(2020, 9, 28)
CONTRACT_AGE_LIMIT = 45


@dataclass(frozen=True)
class Conscription:
    status: str  # registered | deferred | served | exempt
    reason: str | None  # deferred: education | family; exempt: health
    until: dt.date | None  # deferred only
    office: str  # the district's conscription office


@dataclass(frozen=True)
class ServicePeriod:
    start: dt.date
    end: dt.date | None  # None: still serving (contract)
    unit_type: str
    discharge_reason: str | None  # end_of_term | demobilisation | health | age_limit | death; None while serving
    combat: bool


@dataclass(frozen=True)
class ServiceRecord:
    periods: tuple[ServicePeriod, ...]
    combat_veteran: bool


def in_conscription_age(birth: dt.date) -> bool:
    return 18 <= age_on(birth, REFERENCE_DATE) <= 35


def conscription(core: Core, fin: str) -> Conscription | None:
    """The status of a living male citizen aged 18-35; None for everyone else."""
    found = core.member(fin)
    if found is None:
        return None
    unit, m = found
    if m.sex != "M" or m.foreign or not in_conscription_age(m.birth) or not core.living(m):
        return None
    return _plan(core, unit.number, m.slot)[0]


def service_record(core: Core, fin: str) -> ServiceRecord | None:
    """Military service of a man who served; None for everyone else."""
    found = core.member(fin)
    if found is None:
        return None
    record = _plan(core, found[0].number, found[1].slot)[1]
    death = core.overlay.deaths.get(found[1].fin)  # base deaths are already in the plan
    return record if record is None or death is None else _cut(record, death)


def _cut(record: ServiceRecord, death: dt.date) -> ServiceRecord | None:
    """The record as a death on `death` leaves it; None when he died before serving."""
    periods = tuple(p if p.end is not None and p.end <= death
                    else ServicePeriod(p.start, death, p.unit_type, "death", _combat(p.start, death))
                    for p in record.periods if p.start <= death)
    return ServiceRecord(periods, any(p.combat for p in periods)) if periods else None


@lru_cache(maxsize=1 << 14)
def _plan(core: Core, number: int, slot: int) -> tuple[Conscription | None, ServiceRecord | None]:
    unit = core.unit(number)
    m = unit.member(slot)
    assert m is not None
    if m.sex != "M" or m.foreign:
        return None, None
    r = rng(core.salt, "military", number, slot)
    office = f"{core.base_district(number, m.home).name} Səfərbərlik və Hərbi Xidmətə Çağırış şöbəsi"
    if m.studying:
        current = education.current_enrolment(core, m.fin)
        until = current.expected_end if current else add_years(REFERENCE_DATE, 1)
        return Conscription(DEFERRED, "education", until, office), None
    graduated = education.finished_higher(core, unit, m)
    start = add_years(m.birth, 18) + dt.timedelta(days=r.randint(0, 700))
    if graduated is not None and graduated >= add_years(m.birth, 18):
        start = max(start, graduated + dt.timedelta(days=r.randint(60, 200)))
    months = 12 if graduated is not None and graduated < start else 18
    end = add_months(start, months) - DAY
    u = r.random()
    served = end < REFERENCE_DATE and (u < 0.62 if m.age <= 35 else u < 0.65)
    if m.death is not None and m.death <= end:
        served = False
    if not served:
        v = r.random()
        if v < 0.08:
            status = Conscription(EXEMPT, "health", None, office)
        elif v < 0.16:
            until = REFERENCE_DATE + dt.timedelta(days=r.randint(180, 720))
            status = Conscription(DEFERRED, "family", until, office)
        else:
            status = Conscription(REGISTERED, None, None, office)
        return status, None
    reason = "end_of_term"
    if r.random() < 0.03:  # discharged early on health grounds
        end, reason = add_months(start, r.randint(2, months - 1)) - DAY, "health"
    periods = [ServicePeriod(start, end, r.choice(UNIT_TYPES), reason, _combat(start, end))]
    if r.random() < 0.03:
        again = end + dt.timedelta(days=r.randint(30, 400))
        limit = add_years(m.birth, CONTRACT_AGE_LIMIT)
        if again < min(REFERENCE_DATE, limit) and m.death is None:
            stop, why = (None, None) if limit > REFERENCE_DATE else (limit - DAY, "age_limit")
            periods.append(ServicePeriod(again, stop, r.choice(UNIT_TYPES), why, _combat(again, stop)))
    elif 20 <= 2020 - m.birth.year <= 45 and end < MOBILISATION and r.random() < 0.06:
        back = date_between(r, dt.date(2020, 12, 1), dt.date(2021, 1, 31))
        if m.death is None or m.death > back:
            periods.append(ServicePeriod(MOBILISATION, back, r.choice(UNIT_TYPES), "demobilisation", True))
    record = ServiceRecord(tuple(periods), any(p.combat for p in periods))
    return Conscription(SERVED, None, None, office), record


def _combat(start: dt.date, end: dt.date | None) -> bool:
    return any(start <= last and (end is None or end >= first) for first, last in WARS)
