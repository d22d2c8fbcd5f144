"""The statistics committee as the simulators play it: the fixed tables of the synthetic world.

Both tables run to 2026 (ehis.simulators.world.statistics); a year outside them is the NotFound
fault, a month outside 1-12 or an unknown population group the InvalidInput fault. No request
names a person, so nothing is journaled as a subject.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, invalid, not_found
from ehis.simulators.world import SUBSISTENCE_GROUPS, world

GROUP_CODES = {group.upper(): group for group in SUBSISTENCE_GROUPS}


def get_subsistence_minimum(request: dict[str, Any]) -> dict[str, Any]:
    year, code = request["year"], request["group"].strip()
    if code not in GROUP_CODES:
        raise invalid("group", f"a population group is one of {', '.join(GROUP_CODES)}")
    amount = world().subsistence_minimum(year, GROUP_CODES[code])
    if amount is None:
        raise not_found(str(year), "no subsistence minimum is published for this year")
    return {"year": year, "group": code, "amount": amount}


def get_average_wage(request: dict[str, Any]) -> dict[str, Any]:
    year, month = request["year"], request["month"]
    if not 1 <= month <= 12:
        raise invalid("month", "a month is a number from 1 to 12")
    amount = world().average_wage(year, month)
    if amount is None:
        raise not_found(f"{year}-{month:02d}", "no average wage is published for this month")
    return {"year": year, "month": month, "amount": amount}


RESPONDER = Responder((
    Operation("GetSubsistenceMinimum", get_subsistence_minimum, subject=None),
    Operation("GetAverageWage", get_average_wage, subject=None),
))
