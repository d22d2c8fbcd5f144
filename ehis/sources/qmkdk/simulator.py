"""The refugees and IDPs committee as the simulators play it: the statuses of the synthetic world.

Kin groups hold a status together (ehis.simulators.world.idp); a holder's answer lists the other
living members of the group as family members. A person without a status gets an answer
without `displacement`; a FIN nobody holds is the NotFound fault, a malformed one InvalidInput.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, fin_of, not_found
from ehis.simulators.world import world


def get_idp_status(request: dict[str, Any]) -> dict[str, Any]:
    fin = fin_of(request)
    if world().person(fin) is None:
        raise not_found(fin, "no person with this FIN in the committee's register")
    held = world().idp_status(fin)
    if held is None:
        return {"fin": fin}
    home = held.temporary_residence
    return {"fin": fin, "displacement": {
        "status": held.status.upper(), "regionOfOrigin": held.region_of_origin, "since": held.since,
        "temporaryResidence": {"text": home.text, "districtCode": home.district_code,
                               "districtName": home.district_name},
        "familyMember": [member for member in held.family_members if member != fin],
    }}


RESPONDER = Responder((Operation("GetIdpStatus", get_idp_status),))
