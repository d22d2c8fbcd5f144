"""The Ministry of Health as the simulators play it: the referrals of the synthetic world.

A person the world holds gets their referrals (none is an answer with none: children rarely
have one, the old more often; ehis.simulators.world.health); a FIN nobody holds is the NotFound
fault, a malformed one the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, fin_of, not_found
from ehis.simulators.world import world


def get_referrals(request: dict[str, Any]) -> dict[str, Any]:
    fin = fin_of(request)
    if world().person(fin) is None:
        raise not_found(fin, "no patient with this FIN in the health register")
    return {"fin": fin, "referral": [
        {"number": r.number, "kind": r.kind.upper(), "institution": r.institution, "icd10Code": r.icd10,
         "issueDate": r.date, "validUntil": r.valid_until}
        for r in world().referrals(fin)
    ]}


RESPONDER = Responder((Operation("GetReferrals", get_referrals),))
