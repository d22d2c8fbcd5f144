"""Internal Affairs (din): the GetPerson answer -> canonical `Person`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ehis.identifiers import Fin
from ehis.mapping.models import Address, IdentityDocument, Person

SEX = {"M": "male", "F": "female"}


class PersonQuery(BaseModel):
    """Params of `din.person`."""

    model_config = ConfigDict(extra="forbid")

    fin: Fin


def to_person(body: Any) -> Person:
    """Map the deserialized GetPersonResponse body (zeep objects support item access)."""
    p = body["person"]
    doc = p["document"]
    addr = p["registeredAddress"]
    return Person(
        fin=p["fin"],
        surname=p["surname"],
        name=p["name"],
        patronymic=p["patronymic"],
        birth_date=p["birthDate"],
        sex=SEX[p["sex"]],
        citizenship=p["citizenship"],
        document=IdentityDocument(
            type=doc["type"],
            series=doc["series"],
            number=doc["number"],
            issue_date=doc["issueDate"],
            issuing_body=doc["issuingBody"],
            expiry_date=doc["expiryDate"],
        ),
        address=Address(text=addr["text"], district_code=addr["districtCode"], district=addr["districtName"]),
    )
