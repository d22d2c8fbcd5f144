"""The canonical taxpayer and income: only the tax authority returns them, so they live here."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from ehis.mapping.models import Address, Canonical, Money


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


class MonthlyIncome(Canonical):
    """One month's income from one employer (a month with two employers has two lines)."""

    month: str  # YYYY-MM
    employer_voen: str
    declared: Money
    withheld: Money  # the income tax the employer withheld

    @classmethod
    def from_contract(cls, line: dict[str, Any]) -> MonthlyIncome:
        return cls(month=line["month"], employer_voen=line["employerVoen"], declared=line["declared"],
                   withheld=line["withheld"])


class Income(Canonical):
    fin: str
    months: list[MonthlyIncome]  # oldest first; empty when nothing was declared in the period

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> Income:
        return cls(fin=body["fin"], months=[MonthlyIncome.from_contract(line) for line in body["income"]])
