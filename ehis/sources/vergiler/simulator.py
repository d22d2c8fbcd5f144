"""The tax authority as the simulators play it: the taxpayer register and income of the synthetic world.

Every well-formed VÖEN not starting with 0 is a taxpayer (ehis.simulators.world.taxpayers);
a VÖEN starting with 0, or an entrepreneur's VÖEN whose household has no living adult, is the
NotFound fault; a malformed VÖEN the InvalidInput fault.

Income (ehis.simulators.world.work): every person the world holds answers, with one line per
month and employer for the months overlapping the period (none after a death month), possibly
none: no income is not a business outcome. A FIN nobody holds is the NotFound fault; a malformed
FIN, or a period whose end comes before its start, the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import (
    Operation,
    Responder,
    fin_of,
    invalid,
    not_found,
    voen_of,
)
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


def get_income(request: dict[str, Any]) -> dict[str, Any]:
    fin = fin_of(request)
    first, last = request["from"], request["to"]
    if last < first:
        raise invalid("to", "the period ends before it starts")
    if world().person(fin) is None:
        raise not_found(fin, "no taxpayer record for this FIN")
    return {"fin": fin, "income": [
        {"month": f"{r.month:%Y-%m}", "employerVoen": r.employer_voen, "declared": r.declared, "withheld": r.withheld}
        for r in world().income(fin, first, last)
    ]}


RESPONDER = Responder((Operation("GetTaxpayer", get_taxpayer, subject="voen"), Operation("GetIncome", get_income)))
