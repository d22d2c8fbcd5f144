"""The canonical enrolment: only the Ministry of Education returns it, so it lives here.

Not a shared `Period`: there an absent end means "still running", here the end is always
known in advance and is what the programme is expected to take, not what happened.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from ehis.mapping.models import Canonical


class Enrolment(Canonical):
    institution: str
    level: Literal["general", "vocational", "bachelor", "master"]
    full_time: bool
    start: date
    expected_end: date
    speciality: str | None = None  # higher education only

    @classmethod
    def from_contract(cls, e: dict[str, Any]) -> Enrolment:
        return cls(institution=e["institution"], level=e["level"].lower(), full_time=e["fullTime"],
                   start=e["from"], expected_end=e["expectedEnd"], speciality=e["speciality"])


class Enrolments(Canonical):
    """Oldest first; an empty list: never enrolled."""

    fin: str
    enrolments: list[Enrolment]
