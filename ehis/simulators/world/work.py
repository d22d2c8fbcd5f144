"""Work: jobs (employment) and the monthly income the tax authority holds (vergiler.income).

Rules: adults work from 18-24 on (records begin 2000-01-01; foreigners from their arrival);
careers are 1-4 consecutive jobs with short gaps. About 75 % of men and 50 % of women (80 % of
foreigners, 10 % of full-time students) are employed at REFERENCE_DATE (their last job has no
end); 15 % more worked in the past only. Jobs end at 65 and at death: nothing starts after a
death, and a job running at a death (overlay deaths included) ends on the death date.
Children under 18 have no jobs. Every employer is an active legal entity (see taxpayers).

Income: for each job, every month it overlaps: declared = the job's wage for that month (the
average wage of the month times a per-job factor, prorated by days worked); withheld = 14 % of
the part above 200 manat (a simplified income tax). No month after a death month.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from . import migration, statistics, taxpayers
from .dates import (
    DAY,
    REFERENCE_DATE,
    add_months,
    add_years,
    month_end,
    months,
    overlap_days,
)
from .ids import rng

if TYPE_CHECKING:
    from .core import Core

RECORDS_START = dt.date(2000, 1, 1)
RETIREMENT_AGE = 65
TAX_FREE = Decimal(200)
TAX_RATE = Decimal("0.14")
_CENT = Decimal("0.01")
POSITIONS = ("mühasib", "mühəndis", "satış meneceri", "sürücü", "müəllim", "həkim", "tibb bacısı",
             "proqramçı", "fəhlə", "kassir", "aşpaz", "inzibatçı", "hüquqşünas", "iqtisadçı",
             "operator", "mühafizəçi", "tikinti ustası", "xadimə", "anbardar", "elektrik")


@dataclass(frozen=True)
class Job:
    employer_voen: str
    position: str
    start: dt.date
    end: dt.date | None  # None: still employed


@dataclass(frozen=True)
class IncomeMonth:
    month: dt.date  # first day of the month
    employer_voen: str
    declared: Decimal
    withheld: Decimal


def employment(core: Core, fin: str) -> tuple[Job, ...]:
    """Jobs of the person, oldest first; () for no record (children, never worked, nobody)."""
    found = core.member(fin)
    if found is None:
        return ()
    jobs = base_jobs(core, found[0].number, found[1].slot)
    death = core.overlay.deaths.get(found[1].fin)
    return _cut(jobs, death) if death else jobs


def _cut(jobs: tuple[Job, ...], death: dt.date) -> tuple[Job, ...]:
    out = []
    for job in jobs:
        if job.start > death:
            continue
        out.append(job if job.end is not None and job.end <= death else Job(job.employer_voen, job.position,
                                                                             job.start, death))
    return tuple(out)


@lru_cache(maxsize=1 << 14)
def base_jobs(core: Core, unit: int, slot: int) -> tuple[Job, ...]:
    m = core.unit(unit).member(slot)
    assert m is not None
    r = rng(core.salt, "jobs", unit, slot)
    share = 0.8 if m.foreign else 0.1 if m.studying else 0.75 if m.sex == "M" else 0.5
    u = r.random()
    working, ever = u < share, u < share + 0.15
    start = max(add_years(m.birth, 18 + r.randint(0, 6)), RECORDS_START)
    if m.foreign:
        start = max(start, migration.arrival(core, core.unit(unit), m))
    limit = min(REFERENCE_DATE, add_years(m.birth, RETIREMENT_AGE), m.death or REFERENCE_DATE)
    if not ever or start >= limit:
        return ()
    if not working:  # worked in the past only: the career stops somewhere before the limit
        limit = start + (limit - start) * r.uniform(0.3, 0.9)
        if limit <= start:
            return ()
    jobs: list[Job] = []
    while True:
        end = add_months(start, r.randint(12, 120))
        following = end + dt.timedelta(days=r.randint(1, 240))
        last = following >= limit or len(jobs) == 3
        if last:
            end = limit - DAY
        employer = taxpayers.employer_voen(core, r.randrange(taxpayers.EMPLOYERS))
        open_end = last and working and limit == REFERENCE_DATE
        jobs.append(Job(employer, r.choice(POSITIONS), start, None if open_end else end))
        if last:
            return tuple(jobs)
        start = following


def income(core: Core, fin: str, first: dt.date, last: dt.date) -> tuple[IncomeMonth, ...]:
    """Declared and withheld income per month and employer in [first's month, last's month]."""
    found = core.member(fin)
    if found is None or first > last:
        return ()
    unit, m = found
    jobs = employment(core, fin)
    out: list[IncomeMonth] = []
    for month in months(first, last):
        end = month_end(month)
        for index, job in enumerate(jobs):
            days = overlap_days(job.start, job.end, month, end)
            if days == 0:
                continue
            factor = _factor(core.salt, unit.number, m.slot, index)
            wage = statistics.wage_index(month.year, month.month) * factor
            declared = (wage * days / end.day).quantize(_CENT)
            withheld = (max(declared - TAX_FREE, Decimal(0)) * TAX_RATE).quantize(_CENT)
            out.append(IncomeMonth(month, job.employer_voen, declared, withheld))
    return tuple(out)


@lru_cache(maxsize=1 << 14)
def _factor(salt: bytes, unit: int, slot: int, job: int) -> Decimal:
    """How the job pays against the average wage (0.45-2.5, most near 0.9)."""
    r = rng(salt, "wage", unit, slot, job)
    return Decimal(str(round(min(2.5, max(0.45, r.lognormvariate(-0.1, 0.4))), 3)))


def current_job(core: Core, fin: str) -> Job | None:
    """The job running at REFERENCE_DATE, if any (used by the permits' other-employer rule)."""
    jobs = employment(core, fin)
    return jobs[-1] if jobs and jobs[-1].end is None else None

