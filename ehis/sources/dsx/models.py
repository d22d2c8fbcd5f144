"""The canonical border record: only the State Border Service returns it, so it lives here."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ehis.mapping.models import Canonical, Period


class Crossing(Canonical):
    date: dt.date
    checkpoint: str
    direction: Literal["entry", "exit"]


class BorderCrossings(Canonical):
    """Crossings in `period` and the days abroad in it, counted as dsx.xsd documents: from
    `abroad_at_start`, each exit day and the days after it abroad, each entry day and the days after
    it at home, no day after a death."""

    fin: str
    period: Period  # the window asked for, both days included
    abroad_at_start: bool
    crossings: list[Crossing]  # oldest first
    days_abroad: int

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> BorderCrossings:
        crossings = [Crossing(date=c["date"], checkpoint=c["checkpoint"], direction=c["direction"].lower())
                     for c in body["crossing"]]
        return cls(fin=body["fin"], period=Period.from_contract(body), abroad_at_start=body["abroadAtStart"],
                   crossings=crossings, days_abroad=body["daysAbroad"])
