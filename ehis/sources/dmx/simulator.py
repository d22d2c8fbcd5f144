"""The Migration Service as the simulators play it: the permits of the synthetic world.

Only foreigners hold permits (ehis.simulators.world.migration): every foreigner a residence
permit, foreign workers without a permanent one work permits. A citizen's answer carries no
permit; a FIN nobody holds is the NotFound fault, a malformed one the InvalidInput fault.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ehis.simulators.events import changes_operation
from ehis.simulators.responders import Operation, Responder, held_fin
from ehis.simulators.world import ResidencePermit, WorkPermit, world
from ehis.simulators.world.overlay import Change


def _known(request: dict[str, Any]) -> str:
    """The request's FIN, once the registry is known to hold it."""
    fin = held_fin(request, "no person with this FIN in the migration register")
    return fin


def _validity(start: date, end: date) -> dict[str, date]:
    return {"from": start, "to": end}


def get_residence_permit(request: dict[str, Any]) -> dict[str, Any]:
    fin = _known(request)
    p = world().residence_permit(fin)
    if p is None:
        return {"fin": fin}
    return {"fin": fin, "residencePermit": _residence(p)}


def _residence(p: ResidencePermit) -> dict[str, Any]:
    return {"series": p.series, "number": p.number, "kind": p.kind.upper(), "validity": _validity(p.start, p.end)}


def _work(w: WorkPermit) -> dict[str, Any]:
    return {"number": w.number, "employerVoen": w.employer_voen, "position": w.position,
            "validity": _validity(w.start, w.end)}


def get_work_permits(request: dict[str, Any]) -> dict[str, Any]:
    fin = _known(request)
    return {"fin": fin, "workPermit": [_work(w) for w in world().work_permits(fin)]}


def EVENT(change: Change) -> dict[str, Any]:
    """A permit issued, about to expire or expired: the permit as the service holds it from then on."""
    p = change.record
    return {"residencePermit": _residence(p)} if isinstance(p, ResidencePermit) else {"workPermit": _work(p)}


RESPONDER = Responder((
    Operation("GetResidencePermit", get_residence_permit),
    Operation("GetWorkPermits", get_work_permits),
    changes_operation("dmx"),
))
