"""The canonical taxpayer: only the tax authority returns it, so it lives here."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from ehis.mapping.models import Address, Canonical


class Taxpayer(Canonical):
    voen: str
    kind: Literal["legal_entity", "natural_person"]
    name: str  # the company's name, or the entrepreneur's full name
    legal_form: str
    legal_address: Address
    actual_address: Address
    phones: list[str]
    status: Literal["active", "suspended", "liquidated"]
    registered_on: date
    head_fin: str
    sun: str

    @classmethod
    def from_contract(cls, t: dict[str, Any]) -> Taxpayer:
        return cls(voen=t["voen"], kind=t["kind"].lower(), name=t["name"], legal_form=t["legalForm"],
                   legal_address=Address.from_contract(t["legalAddress"]),
                   actual_address=Address.from_contract(t["actualAddress"]), phones=t["phone"],
                   status=t["status"].lower(), registered_on=t["registrationDate"], head_fin=t["headFin"],
                   sun=t["sun"])
