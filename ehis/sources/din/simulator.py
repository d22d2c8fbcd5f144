"""Internal Affairs (DİN) as the simulators play it: the person registry of the synthetic world.

A FIN the world holds answers GetPersonResponse (with the death date once one is registered) and
GetVehiclesResponse (possibly with no vehicle: the world registers none after a death); one it
does not (those starting with "0", but for children born through the overlay) is the NotFound
fault; a malformed FIN the InvalidInput fault. GetChangesSince answers the changes of registered
address (ehis.simulators.events).
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.events import changes_operation
from ehis.simulators.responders import Operation, Responder, fin_of, not_found
from ehis.simulators.world import Address, Person, world
from ehis.simulators.world.overlay import Change


def _registered(request: dict[str, Any]) -> Person:
    """The person the request names, or the NotFound fault: vehicles, too, need a registered owner."""
    fin = fin_of(request)
    p = world().person(fin)
    if p is None:
        raise not_found(fin, "no person with this FIN in the registry")
    return p


def get_person(request: dict[str, Any]) -> dict[str, Any]:
    p = _registered(request)
    d, a = p.document, p.address
    return {"person": {
        "fin": p.fin, "surname": p.surname, "name": p.name, "patronymic": p.patronymic,
        "birthDate": p.birth_date, "sex": p.sex, "citizenship": p.citizenship,
        "document": {"type": d.type, "series": d.series, "number": d.number, "issueDate": d.issue_date,
                     "issuingBody": d.issuing_body, "expiryDate": d.expiry_date},
        "registeredAddress": _address(a),
        "deathDate": p.death_date,
    }}


def _address(a: Address) -> dict[str, Any]:
    return {"text": a.text, "districtCode": a.district_code, "districtName": a.district_name}


def EVENT(change: Change) -> dict[str, Any]:
    """A change of registered address: the new address, from the day of the move."""
    return {"address": _address(change.record), "since": change.day}


def get_vehicles(request: dict[str, Any]) -> dict[str, Any]:
    owner = _registered(request).fin
    return {"fin": owner, "vehicle": [
        {"make": v.make, "model": v.model, "year": v.year, "plate": v.plate, "registrationDate": v.registration_date}
        for v in world().vehicles(owner)
    ]}


RESPONDER = Responder((Operation("GetPerson", get_person), Operation("GetVehicles", get_vehicles),
                       changes_operation("din")))
