"""Canonical models several sources share: what callers receive, whatever a contract looks like.

A model only one source returns lives with that source (ehis/sources/<code>/). The
`from_contract` constructors read the shared shapes of ehis/contracts/schemas/ehis.xsd as the
codec decodes them, so every source maps an address or a document the same way.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer

SEX = {"M": "male", "F": "female"}

Money = Annotated[Decimal, PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json")]
"""An amount in manat; serialised as a decimal string so no cent is lost to a float."""


class Canonical(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentityDocument(Canonical):
    type: str
    series: str
    number: str
    issue_date: date
    issuing_body: str
    expiry_date: date | None = None

    @classmethod
    def from_contract(cls, d: dict[str, Any]) -> IdentityDocument:
        return cls(type=d["type"], series=d["series"], number=d["number"], issue_date=d["issueDate"],
                   issuing_body=d["issuingBody"], expiry_date=d["expiryDate"])


class Address(Canonical):
    text: str
    district_code: str
    district: str

    @classmethod
    def from_contract(cls, a: dict[str, Any]) -> Address:
        return cls(text=a["text"], district_code=a["districtCode"], district=a["districtName"])


class Period(Canonical):
    start: date
    end: date | None = None  # None: still running

    @classmethod
    def from_contract(cls, p: dict[str, Any]) -> Period:
        return cls(start=p["from"], end=p["to"])


class Person(Canonical):
    fin: str
    surname: str
    name: str
    patronymic: str
    birth_date: date
    sex: Literal["male", "female"]
    citizenship: str
    document: IdentityDocument
    address: Address
    death_date: date | None = None

    @classmethod
    def from_contract(cls, p: dict[str, Any]) -> Person:
        return cls(fin=p["fin"], surname=p["surname"], name=p["name"], patronymic=p["patronymic"],
                   birth_date=p["birthDate"], sex=SEX[p["sex"]], citizenship=p["citizenship"],
                   document=IdentityDocument.from_contract(p["document"]),
                   address=Address.from_contract(p["registeredAddress"]), death_date=p.get("deathDate"))


class MonthlyUse(Canonical):
    month: date  # the month's first day
    amount: Decimal  # in the answer's unit


class UtilitySubscription(Canonical):
    subscriber_code: str
    address: Address  # the subscriber's registered address (din.person)
    since: date  # the month the subscription began
    debt: Money  # the balance owed on `debt_on`
    debt_on: date
    months: list[MonthlyUse]  # each asked month the subscription ran, in order

    @classmethod
    def from_contract(cls, s: dict[str, Any]) -> UtilitySubscription:
        return cls(subscriber_code=s["subscriberCode"], address=Address.from_contract(s["address"]),
                   since=s["since"], debt=s["debt"], debt_on=s["debtOn"],
                   months=[MonthlyUse(month=date.fromisoformat(f"{m['month']}-01"), amount=m["amount"])
                           for m in s["monthly"]])


class UtilityConsumption(Canonical):
    """One utility's answer for a person and a period (azerishiq, azersu, azeriqaz.consumption).

    Only the head of a household subscribes: anyone else the utility knows of is answered with
    `subscription` None ("no subscription"), so a means test asking every member can tell that
    from "no such person", which is the `not_found` error.
    """

    fin: str
    unit: Literal["kWh", "m3"]
    subscription: UtilitySubscription | None = None

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> UtilityConsumption:
        held = body["subscription"]
        return cls(fin=body["fin"], unit=body["unit"],
                   subscription=UtilitySubscription.from_contract(held) if held is not None else None)
