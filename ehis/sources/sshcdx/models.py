"""The canonical conscription status: only the conscription service returns it, so it lives here."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ehis.mapping.models import Canonical


class ConscriptionStatus(Canonical):
    """Where a person stands with conscription; "not_applicable" outside the register (women,
    foreigners, men under 18 or over 35, the deceased): a positive answer, not a missing record."""

    fin: str
    status: Literal["registered", "deferred", "served", "exempt", "not_applicable"]
    reason: Literal["education", "family", "health"] | None = None  # deferred, exempt
    until: dt.date | None = None  # deferred: the day the deferral ends
    office: str | None = None  # the conscription office keeping the file; None when not applicable

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> ConscriptionStatus:
        reason = body["reason"]
        return cls(fin=body["fin"], status=body["status"].lower(), reason=reason.lower() if reason else None,
                   until=body["until"], office=body["office"])
