"""The Ministry of Defence as the simulators play it: service records of the synthetic world.

Every person the world holds answers (ehis.simulators.world.military): the periods of a man who
served, or none: never having served (women, foreigners, men not called up) is not a business
outcome, so it is an answer with no period and no veteran flag. A FIN nobody holds (those
starting with 0) is the NotFound fault, a malformed FIN the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, held_fin
from ehis.simulators.world import ServicePeriod, world


def _period(p: ServicePeriod) -> dict[str, Any]:
    return {"from": p.start, "to": p.end, "unitType": p.unit_type.upper(),
            "dischargeReason": p.discharge_reason.upper() if p.discharge_reason else None, "combat": p.combat}


def get_service_record(request: dict[str, Any]) -> dict[str, Any]:
    fin = held_fin(request, "no person with this FIN in the military records")
    record = world().service_record(fin)
    periods = record.periods if record is not None else ()
    return {"fin": fin, "period": [_period(p) for p in periods],
            "combatVeteran": record is not None and record.combat_veteran}


RESPONDER = Responder((Operation("GetServiceRecord", get_service_record),))
