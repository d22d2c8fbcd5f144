"""The Ministry of Health as the simulators play it: the referrals of the synthetic world.

A person the world holds gets their referrals (none is an answer with none: children rarely
have one, the old more often; ehis.simulators.world.health); a FIN nobody holds is the NotFound
fault, a malformed one the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.events import changes_operation
from ehis.simulators.responders import Operation, Responder, held_fin
from ehis.simulators.world import Referral, world
from ehis.simulators.world.overlay import Change


def get_referrals(request: dict[str, Any]) -> dict[str, Any]:
    fin = held_fin(request, "no patient with this FIN in the health register")
    return {"fin": fin, "referral": [_referral(r) for r in world().referrals(fin)]}


def _referral(r: Referral) -> dict[str, Any]:
    return {"number": r.number, "kind": r.kind.upper(), "institution": r.institution, "icd10Code": r.icd10,
            "issueDate": r.date, "validUntil": r.valid_until}


def EVENT(change: Change) -> dict[str, Any]:
    """A referral issued: as GetReferrals lists it from then on."""
    return {"referral": _referral(change.record)}


RESPONDER = Responder((Operation("GetReferrals", get_referrals), changes_operation("sehiyye")))
