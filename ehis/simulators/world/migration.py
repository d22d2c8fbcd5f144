"""The State Migration Service (dmx): residence and work permits. ONLY foreign citizens have any.

Residence permit: every foreigner has one, and it is their din identity document (same series
"MI" and number). 20 % are permanent (5 years; only for those here 2+ years), the rest temporary
(1-3 years). 8 % are EXPIRED at REFERENCE_DATE (ended in the 300 days before it), but never one
of a holder who came (or was born) within those 300 days: a permit never ends before it starts.
A kin group (a foreign family, or a single) arrived together: `arrival` is its first entry.

Work permits: holders of a permanent residence permit need none (and have none). For the others,
each job since 2012 is covered by consecutive 1-2-year permits naming the job's employer and
position. For 10 % of foreign workers employed at REFERENCE_DATE the last permit is EXPIRED
(ended before REFERENCE_DATE while the job goes on); for 6 % the last permit names ANOTHER
EMPLOYER (an active legal entity) than the one they work for. Permits issued through the overlay
(`issue_permit`) come after these.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from . import taxpayers
from .dates import DAY, REFERENCE_DATE, add_years, date_between
from .ids import rng, seed
from .people import MIGRATION_BODY, Document

if TYPE_CHECKING:
    from .core import Core
    from .units import Member, Unit

PERMANENT, TEMPORARY = "permanent", "temporary"
PERMIT_SERIES = "MI"
EXPIRED_RESIDENCE_SHARE = 0.08
EXPIRY_WINDOW = dt.timedelta(days=300)  # an expired residence permit ended within it
EXPIRED_WORK_SHARE = 0.10
OTHER_EMPLOYER_SHARE = 0.06
WORK_PERMITS_FROM = dt.date(2012, 1, 1)


@dataclass(frozen=True)
class ResidencePermit:
    series: str
    number: str
    kind: str  # temporary | permanent
    start: dt.date
    end: dt.date

    def document(self) -> Document:
        """The permit as the din identity document of its holder."""
        return Document("RESIDENCE_PERMIT", self.series, self.number, self.start, MIGRATION_BODY, self.end)


@dataclass(frozen=True)
class WorkPermit:
    number: str
    employer_voen: str
    position: str
    start: dt.date
    end: dt.date


P = TypeVar("P", ResidencePermit, WorkPermit)


def arrival(core: Core, unit: Unit, m: Member) -> dt.date:
    """The day a foreigner's kin group came to the country (never before their birth)."""
    r = rng(core.salt, "arrival", unit.number, m.kin)
    return max(m.birth, REFERENCE_DATE - dt.timedelta(days=r.randint(365, 4000)))


@lru_cache(maxsize=1 << 14)
def _base_permit(core: Core, unit_number: int, slot: int) -> ResidencePermit:
    unit = core.unit(unit_number)
    m = unit.member(slot)
    assert m is not None
    came = arrival(core, unit, m)
    r = rng(core.salt, "residence", unit_number, slot)
    permanent = r.random() < 0.2 and came <= add_years(REFERENCE_DATE, -2)
    years = 5 if permanent else r.choice((1, 2, 2, 3))
    if r.random() < EXPIRED_RESIDENCE_SHARE and came < REFERENCE_DATE - EXPIRY_WINDOW:
        end = date_between(r, REFERENCE_DATE - EXPIRY_WINDOW, REFERENCE_DATE - DAY)
    else:
        end = date_between(r, REFERENCE_DATE + DAY, add_years(REFERENCE_DATE, years) - DAY)
    start = max(add_years(end, -years) + DAY, came)
    return ResidencePermit(PERMIT_SERIES, f"{r.randrange(10**7):07d}", PERMANENT if permanent else TEMPORARY,
                           start, end)


def base_residence_permit(core: Core, unit: Unit, m: Member) -> ResidencePermit:
    return _base_permit(core, unit.number, m.slot)


def residence_permit(core: Core, fin: str) -> ResidencePermit | None:
    """The current residence permit (the latest issued); None for citizens and nobody."""
    found = core.member(fin)
    if found is None or not found[1].foreign:
        return None
    issued = [p for p in core.overlay.permits.get(found[1].fin, ()) if isinstance(p, ResidencePermit)]
    return _amended(core, found[1].fin, issued[-1] if issued else _base_permit(core, found[0].number, found[1].slot))


def work_permits(core: Core, fin: str) -> tuple[WorkPermit, ...]:
    """Work permits, oldest first; () for citizens, permanent residents and non-workers."""
    found = core.member(fin)
    if found is None or not found[1].foreign:
        return ()
    issued = tuple(p for p in core.overlay.permits.get(found[1].fin, ()) if isinstance(p, WorkPermit))
    return tuple(_amended(core, found[1].fin, p)
                 for p in _base_work_permits(core, found[0].number, found[1].slot) + issued)


def _amended(core: Core, fin: str, permit: P) -> P:
    """The permit with the last day the overlay gave it (one cut short: expiring soon, or expired)."""
    end = core.overlay.permit_ends.get(fin, {}).get(permit.number)
    return permit if end is None else dataclasses.replace(permit, end=end)


@lru_cache(maxsize=1 << 14)
def _base_work_permits(core: Core, unit_number: int, slot: int) -> tuple[WorkPermit, ...]:
    from .work import base_jobs

    if _base_permit(core, unit_number, slot).kind == PERMANENT:
        return ()
    r = rng(core.salt, "work-permits", unit_number, slot)
    out: list[WorkPermit] = []
    for job in base_jobs(core, unit_number, slot):
        if job.end is not None and job.end < WORK_PERMITS_FROM:
            continue
        start = max(job.start, WORK_PERMITS_FROM)
        stop = job.end or REFERENCE_DATE
        while start <= stop:
            end = add_years(start, r.choice((1, 2))) - DAY
            if job.end is not None:
                end = min(end, job.end)
            out.append(WorkPermit(_number(core.salt, unit_number, slot, len(out), start), job.employer_voen,
                                  job.position, start, end))
            start = end + DAY
        if job.end is None and out:
            last = out[-1]
            if r.random() < EXPIRED_WORK_SHARE and last.start < REFERENCE_DATE:
                cut = last.start + (REFERENCE_DATE - last.start) * r.uniform(0.3, 0.95)
                last = WorkPermit(last.number, last.employer_voen, last.position, last.start,
                                  min(cut, REFERENCE_DATE - DAY))
            if r.random() < OTHER_EMPLOYER_SHARE:
                other = taxpayers.employer_voen(core, r.randrange(taxpayers.EMPLOYERS))
                if other == job.employer_voen:
                    other = taxpayers.employer_voen(core, r.randrange(taxpayers.EMPLOYERS))
                last = WorkPermit(last.number, other, last.position, last.start, last.end)
            out[-1] = last
    return tuple(out)


def _number(salt: bytes, unit: int, slot: int, index: int, start: dt.date) -> str:
    return f"WP{start.year}{seed(salt, 'work-permit', unit, slot, index) % 10**6:06d}"


def new_permit_number(salt: bytes, fin: str, kind: str, count: int, start: dt.date) -> str:
    """Numbers of permits issued through the overlay: stable for the same call sequence."""
    value = seed(salt, "issued", fin, kind, count, start)
    return f"{value % 10**7:07d}" if kind == "residence" else f"WP{start.year}{value % 10**6:06d}"
