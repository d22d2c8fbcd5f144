"""The property committee as the simulators play it: real estate rights of the synthetic world.

Ownership follows ehis.simulators.world.assets: a married couple owns its home 1/2 each under one
registry number, at the address both are registered at in din. A held FIN with nothing registered
answers no property; a FIN starting with 0 is the NotFound fault, a malformed one InvalidInput.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, held_fin
from ehis.simulators.world import Property, world


def _right(p: Property) -> dict[str, Any]:
    where = p.address
    return {
        "kind": p.kind.upper(),
        "address": {"text": where.text, "districtCode": where.district_code, "districtName": where.district_name},
        "areaM2": p.area_m2,
        "share": {"numerator": p.share.numerator, "denominator": p.share.denominator},
        "registryNumber": p.registry_number,
        "registrationDate": p.registration_date,
    }


def get_real_estate(request: dict[str, Any]) -> dict[str, Any]:
    fin = held_fin(request, "no person with this FIN in the real estate register")
    return {"fin": fin, "property": [_right(p) for p in world().real_estate(fin)]}


RESPONDER = Responder((Operation("GetRealEstate", get_real_estate),))
