"""Border crossings (dsx.border-crossings) and the days abroad they imply.

Records cover 2010-01-01 .. 2024-12-31 and adults (18+ on the day). 55 % of people never cross;
35 % travel now and then (0-3 trips a year, 2-30 days), 7 % often (3-8 short trips a year), 3 %
are migrant workers (one trip of 4-9 months a year). Trips of a year sit in disjoint slices of
that year, so crossings alternate EXIT, ENTRY, EXIT, ... without overlap. Some travellers (5 %,
30 % of migrant workers, when they travel in 2024) are abroad at REFERENCE_DATE: their last
crossing is an EXIT with no ENTRY after it. Foreigners
whose kin group arrived in 2010 or later start with an ENTRY on their arrival day. No crossing
after a death (overlay deaths included).

DAYS ABROAD in a window [start, end] (both included): count the days d in the window for which
some EXIT on day x is followed by the next ENTRY on day e (or no ENTRY at all) with x <= d < e.
The exit day counts as abroad, the entry day does not. Days before a foreigner's first ENTRY are
not counted (they did not live here yet). No day after a death counts (someone who died abroad
has an EXIT and no ENTRY after it, and is abroad up to the day of death included).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from . import migration
from .dates import REFERENCE_DATE, add_years
from .ids import rng
from .places import checkpoint

if TYPE_CHECKING:
    from .core import Core

EXIT, ENTRY = "EXIT", "ENTRY"
FIRST_YEAR, LAST_YEAR = 2010, REFERENCE_DATE.year - 1


@dataclass(frozen=True)
class Crossing:
    date: dt.date
    checkpoint: str
    direction: str  # EXIT | ENTRY


@dataclass(frozen=True)
class BorderRecord:
    crossings: tuple[Crossing, ...]  # those in the window, oldest first
    days_abroad: int


def border_crossings(core: Core, fin: str, start: dt.date, end: dt.date) -> BorderRecord | None:
    """Crossings in [start, end] and the days abroad in it; None for nobody."""
    found = core.member(fin)
    if found is None:
        return None
    if start > end:
        raise ValueError("the window ends before it starts")
    death = core.death_date(found[1].fin)
    every = tuple(c for c in all_crossings(core, found[0].number, found[1].slot)
                  if death is None or c.date <= death)
    window = tuple(c for c in every if start <= c.date <= end)
    counted_to = end if death is None else min(end, death)  # before `start` when he died before it: 0
    return BorderRecord(window, days_abroad(every, start, counted_to))


def days_abroad(crossings: tuple[Crossing, ...], start: dt.date, end: dt.date) -> int:
    """The documented rule: days d in [start, end] with EXIT x <= d < next ENTRY (or none)."""
    total = 0
    left: dt.date | None = None
    for c in crossings:
        if c.direction == EXIT:
            left = c.date
        elif left is not None:
            total += _overlap(left, c.date, start, end)
            left = None
    if left is not None:
        total += _overlap(left, None, start, end)
    return total


def _overlap(left: dt.date, back: dt.date | None, start: dt.date, end: dt.date) -> int:
    lo = max(left, start)
    hi = end + dt.timedelta(days=1) if back is None else min(back, end + dt.timedelta(days=1))
    return max(0, (hi - lo).days)


@lru_cache(maxsize=1 << 14)
def all_crossings(core: Core, number: int, slot: int) -> tuple[Crossing, ...]:
    unit = core.unit(number)
    m = unit.member(slot)
    assert m is not None
    r = rng(core.salt, "border", number, slot)
    u = r.random()
    kind = "never" if u < 0.55 else "sometimes" if u < 0.90 else "often" if u < 0.97 else "migrant"
    out: list[Crossing] = []
    first_day = max(add_years(m.birth, 18), dt.date(FIRST_YEAR, 1, 1))
    if m.foreign:
        came = migration.arrival(core, unit, m)
        if came >= dt.date(FIRST_YEAR, 1, 1):
            out.append(Crossing(came, checkpoint(r), ENTRY))
        first_day = max(first_day, came + dt.timedelta(days=1))
    if kind == "never" or m.death is not None and m.death < first_day:
        return tuple(out)
    stays_out = r.random() < (0.30 if kind == "migrant" else 0.05)
    for year in range(max(first_day.year, FIRST_YEAR), LAST_YEAR + 1):
        trips = {"sometimes": r.randint(0, 3), "often": r.randint(3, 8), "migrant": 1}[kind]
        if trips == 0:
            continue
        days_in_year = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
        width = days_in_year // trips
        for t in range(trips):
            slice_start = dt.date(year, 1, 1) + dt.timedelta(days=t * width)
            if kind == "migrant":
                length = r.randint(120, 270)
            else:
                length = r.randint(2, 30 if kind == "sometimes" else 10)
            length = min(length, width - 2)
            if length < 1:
                continue
            gone = slice_start + dt.timedelta(days=r.randint(0, width - length - 1))
            back = gone + dt.timedelta(days=length)
            if gone < first_day or (m.death is not None and back >= m.death):
                continue
            where = checkpoint(r)
            out.append(Crossing(gone, where, EXIT))
            last_trip = year == LAST_YEAR and t == trips - 1
            if not (stays_out and last_trip):
                out.append(Crossing(back, where if r.random() < 0.7 else checkpoint(r), ENTRY))
    return tuple(out)
