"""NRYTN as the simulators play it: the mobile numbers of the synthetic world.

A person the world holds gets their numbers (none for children and the deceased, and for 5 %
of adults; ehis.simulators.world.contacts); a FIN nobody holds is the NotFound fault, a
malformed one the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, held_fin
from ehis.simulators.world import world


def get_mobile_numbers(request: dict[str, Any]) -> dict[str, Any]:
    fin = held_fin(request, "no subscriber with this FIN in the number register")
    numbers = world().mobile_numbers(fin)
    return {"fin": fin,
            "mobileNumber": [{"number": n.number, "operator": n.operator, "registrationDate": n.registered}
                             for n in numbers]}


RESPONDER = Responder((Operation("GetMobileNumbers", get_mobile_numbers),))
