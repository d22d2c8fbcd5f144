"""Mobile numbers registered to a FIN (nrytn.mobile-numbers).

Rule: adults (18+ at REFERENCE_DATE) who are alive have 1-3 numbers (5 % have none); children
and the deceased have none (a number is deregistered at death, overlay deaths included).
A number is registered from the 18th birthday (one who turns 18 on REFERENCE_DATE registers that
day), never before 2005, and for a foreigner never before their arrival in the country.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from . import migration
from .dates import REFERENCE_DATE, add_years, date_between
from .ids import rng

if TYPE_CHECKING:
    from .core import Core

OPERATORS = {"50": "Azercell", "51": "Azercell", "10": "Azercell", "55": "Bakcell", "99": "Bakcell",
             "70": "Nar", "77": "Nar"}
PREFIXES = tuple(OPERATORS)


@dataclass(frozen=True)
class MobileNumber:
    number: str  # E.164, e.g. +994501234567
    operator: str
    registered: dt.date


def mobile_numbers(core: Core, fin: str) -> tuple[MobileNumber, ...]:
    """Numbers registered to the person; () when none, nobody, a child or deceased."""
    found = core.member(fin)
    if found is None or not core.living(found[1]):
        return ()
    return _numbers(core, found[0].number, found[1].slot)


@lru_cache(maxsize=1 << 14)
def _numbers(core: Core, unit: int, slot: int) -> tuple[MobileNumber, ...]:
    m = core.unit(unit).member(slot)
    assert m is not None
    if m.age < 18:
        return ()
    r = rng(core.salt, "mobile", unit, slot)
    count = r.choices((0, 1, 2, 3), weights=(5, 72, 19, 4))[0]
    first = max(add_years(m.birth, 18), dt.date(2005, 1, 1))
    if m.foreign:
        first = max(first, migration.arrival(core, core.unit(unit), m))
    last = max(first, REFERENCE_DATE - dt.timedelta(days=1))
    out = []
    for _ in range(count):
        prefix = r.choice(PREFIXES)
        since = date_between(r, first, last)
        out.append(MobileNumber(f"+994{prefix}{r.randrange(2 * 10**6, 10**7):07d}", OPERATORS[prefix], since))
    return tuple(sorted(out, key=lambda n: n.registered))
