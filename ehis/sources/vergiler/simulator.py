"""The tax authority as the simulators play it: the taxpayer register of the synthetic world.

Every well-formed VÖEN not starting with 0 is a taxpayer (ehis.simulators.world.taxpayers);
a VÖEN starting with 0, or an entrepreneur's VÖEN whose household has no living adult, is the
NotFound fault; a malformed VÖEN the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, not_found, voen_of
from ehis.simulators.world import world
from ehis.simulators.world.places import Address


def _address(a: Address) -> dict[str, str]:
    return {"text": a.text, "districtCode": a.district_code, "districtName": a.district_name}


def get_taxpayer(request: dict[str, Any]) -> dict[str, Any]:
    voen = voen_of(request)
    t = world().taxpayer(voen)
    if t is None or t.head_fin is None:
        raise not_found(voen, "no taxpayer with this VÖEN in the register")
    return {"taxpayer": {
        "voen": t.voen, "kind": t.kind.upper(), "name": t.name, "legalForm": t.legal_form,
        "legalAddress": _address(t.legal_address), "actualAddress": _address(t.actual_address),
        "phone": list(t.phones), "status": t.status.upper(), "registrationDate": t.registration_date,
        "headFin": t.head_fin, "sun": t.sun,
    }}


RESPONDER = Responder((Operation("GetTaxpayer", get_taxpayer, subject="voen"),))
