"""The canonical list of mobile numbers: only NRYTN returns it, so it lives here."""

from __future__ import annotations

from datetime import date
from typing import Any

from ehis.mapping.models import Canonical


class MobileNumber(Canonical):
    number: str  # E.164: +994 and nine digits
    operator: str
    registered_on: date


class MobileNumbers(Canonical):
    """The numbers registered to a person, oldest first; an empty list when there is none."""

    fin: str
    numbers: list[MobileNumber]

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> MobileNumbers:
        numbers = [MobileNumber(number=n["number"], operator=n["operator"], registered_on=n["registrationDate"])
                   for n in body["mobileNumber"]]
        return cls(fin=body["fin"], numbers=numbers)
