"""The conscription service as the simulators play it: the register of the synthetic world.

The world (ehis.simulators.world.military) gives a status only to living male citizens aged
18-35 at its reference date. Everyone else it holds is answered NOT_APPLICABLE (the contract's
choice: a signed "the register does not concern this person", which a caller can tell from a
FIN that names nobody). A FIN nobody holds (those starting with 0) is the NotFound fault, a
malformed FIN the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, held_fin
from ehis.simulators.world import world


def get_conscription_status(request: dict[str, Any]) -> dict[str, Any]:
    fin = held_fin(request, "no person with this FIN")
    found = world().conscription(fin)
    if found is None:
        return {"fin": fin, "status": "NOT_APPLICABLE"}
    reason = found.reason.upper() if found.reason else None
    return {"fin": fin, "status": found.status.upper(), "reason": reason, "until": found.until,
            "office": found.office}


RESPONDER = Responder((Operation("GetConscriptionStatus", get_conscription_status),))
