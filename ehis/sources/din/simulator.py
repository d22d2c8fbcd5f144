"""Internal Affairs (DİN) as the simulators play it: the person registry of the synthetic world.

A FIN the world holds answers GetPersonResponse (with the death date once one is registered); one
it does not (those starting with "0") is the NotFound fault; a malformed FIN the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, fin_of, not_found
from ehis.simulators.world import world


def get_person(request: dict[str, Any]) -> dict[str, Any]:
    fin = fin_of(request)
    p = world().person(fin)
    if p is None:
        raise not_found(fin, "no person with this FIN in the registry")
    d, a = p.document, p.address
    return {"person": {
        "fin": p.fin, "surname": p.surname, "name": p.name, "patronymic": p.patronymic,
        "birthDate": p.birth_date, "sex": p.sex, "citizenship": p.citizenship,
        "document": {"type": d.type, "series": d.series, "number": d.number, "issueDate": d.issue_date,
                     "issuingBody": d.issuing_body, "expiryDate": d.expiry_date},
        "registeredAddress": {"text": a.text, "districtCode": a.district_code, "districtName": a.district_name},
        "deathDate": p.death_date,
    }}


RESPONDER = Responder((Operation("GetPerson", get_person),))
