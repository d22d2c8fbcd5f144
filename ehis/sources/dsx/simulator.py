"""The State Border Service as the simulators play it: crossings of the synthetic world.

Every person the world holds answers (ehis.simulators.world.border), with the crossings of the
period and the days abroad in it, possibly none: never having crossed is not a business outcome.
`abroadAtStart` is read from the world's own count: abroad on the day before the period. A FIN
nobody holds (those starting with 0) is the NotFound fault; a malformed FIN, or a period whose end
comes before its start, the InvalidInput fault.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ehis.simulators.responders import Operation, Responder, fin_of, invalid, not_found
from ehis.simulators.world import world


def _abroad_before(fin: str, day: dt.date) -> bool:
    """Whether the person spent the day before `day` abroad (the last crossing before it an EXIT)."""
    if day == dt.date.min:
        return False
    eve = day - dt.timedelta(days=1)
    record = world().border_crossings(fin, eve, eve)
    return record is not None and record.days_abroad == 1


def get_border_crossings(request: dict[str, Any]) -> dict[str, Any]:
    fin = fin_of(request)
    start, end = request["from"], request["to"]
    if end < start:
        raise invalid("to", "the period ends before it starts")
    record = world().border_crossings(fin, start, end)
    if record is None:
        raise not_found(fin, "no person with this FIN in the border records")
    return {
        "fin": fin, "from": start, "to": end, "abroadAtStart": _abroad_before(fin, start),
        "crossing": [{"date": c.date, "checkpoint": c.checkpoint, "direction": c.direction} for c in record.crossings],
        "daysAbroad": record.days_abroad,
    }


RESPONDER = Responder((Operation("GetBorderCrossings", get_border_crossings),))
