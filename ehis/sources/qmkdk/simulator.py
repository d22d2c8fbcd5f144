"""The refugees and IDPs committee as the simulators play it: the statuses of the synthetic world.

Kin groups hold a status together (ehis.simulators.world.idp); a holder's answer lists the other
living members of the group as family members. A person without a status gets an answer
without `displacement`; a FIN nobody holds is the NotFound fault, a malformed one InvalidInput.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.events import changes_operation
from ehis.simulators.responders import Operation, Responder, held_fin
from ehis.simulators.world import IdpStatus, world
from ehis.simulators.world.overlay import Change


def get_idp_status(request: dict[str, Any]) -> dict[str, Any]:
    fin = held_fin(request, "no person with this FIN in the committee's register")
    held = world().idp_status(fin)
    return {"fin": fin} if held is None else {"fin": fin, "displacement": _displacement(fin, held)}


def _displacement(fin: str, held: IdpStatus) -> dict[str, Any]:
    home = held.temporary_residence
    return {
        "status": held.status.upper(), "regionOfOrigin": held.region_of_origin, "since": held.since,
        "temporaryResidence": {"text": home.text, "districtCode": home.district_code,
                               "districtName": home.district_name},
        "familyMember": [member for member in held.family_members if member != fin],
    }


def EVENT(change: Change) -> dict[str, Any]:
    """A status set, changed or withdrawn (no displacement) for one member of the kin group."""
    held = change.record
    return {"since": change.day, "displacement": _displacement(change.fin, held) if held is not None else None}


RESPONDER = Responder((Operation("GetIdpStatus", get_idp_status), changes_operation("qmkdk")))
