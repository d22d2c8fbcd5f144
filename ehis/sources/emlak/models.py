"""The canonical real estate record: only the property committee returns it, so it lives here.

A share is a `Fraction` (exact; JSON "1/2"), as the contract carries it (numerator/denominator).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from ehis.mapping.models import Address, Canonical


class Property(Canonical):
    kind: Literal["apartment", "house", "non_residential"]
    address: Address
    area_m2: Decimal
    share: Fraction  # the person's part: 1/2 for each spouse of a jointly owned home
    registry_number: str  # one right, one number: co-owners see the same
    registered_on: date

    @classmethod
    def from_contract(cls, p: dict[str, Any]) -> Property:
        part = p["share"]
        return cls(kind=p["kind"].lower(), address=Address.from_contract(p["address"]), area_m2=p["areaM2"],
                   share=Fraction(part["numerator"], part["denominator"]), registry_number=p["registryNumber"],
                   registered_on=p["registrationDate"])


class RealEstate(Canonical):
    """What is registered to the person (an empty list: nothing is)."""

    fin: str
    properties: list[Property]


def real_estate(body: dict[str, Any]) -> RealEstate:
    """The decoded GetRealEstateResponse as the canonical model (the service's mapper)."""
    return RealEstate(fin=body["fin"], properties=list(map(Property.from_contract, body["property"])))
