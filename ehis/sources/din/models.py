"""The canonical vehicle list: only Internal Affairs keeps the vehicle register, so it lives here
(the person is shared: ehis.mapping.models.Person)."""

from __future__ import annotations

from datetime import date
from typing import Any

from ehis.mapping.models import Address, Canonical


class Vehicle(Canonical):
    make: str
    model: str
    year: int  # the model year
    plate: str
    registered_on: date


class Vehicles(Canonical):
    """Every vehicle registered to the person; an empty list is an answer (they own none)."""

    fin: str
    vehicles: list[Vehicle]

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> Vehicles:
        cars = [Vehicle(make=v["make"], model=v["model"], year=v["year"], plate=v["plate"],
                        registered_on=v["registrationDate"]) for v in body["vehicle"]]
        return cls(fin=body["fin"], vehicles=cars)


class AddressChange(Canonical):
    """A person's registered address from `since` on (the `din.address-changed` event)."""

    fin: str
    address: Address
    since: date

    @classmethod
    def from_event(cls, e: dict[str, Any]) -> AddressChange:
        return cls(fin=e["fin"], address=Address.from_contract(e["address"]), since=e["since"])
