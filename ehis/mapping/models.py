"""The canonical model: what callers receive, whatever the source's contract looks like."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Canonical(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentityDocument(Canonical):
    type: str
    series: str
    number: str
    issue_date: date
    issuing_body: str
    expiry_date: date | None = None


class Address(Canonical):
    text: str
    district_code: str
    district: str


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
