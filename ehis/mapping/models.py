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
