"""The local executive authorities as the simulators play them: one endpoint per authority of
`AUTHORITIES`, each answering household certificates only for people registered in its own
districts (the one with no districts of its own answers for every district no other claims).
Asked about someone registered elsewhere, an authority answers the OutOfDistrict fault."""

from __future__ import annotations

from functools import cache
from typing import Any

from ehis.simulators.journal import Outcome
from ehis.simulators.responders import (
    BusinessFault,
    Operation,
    Responder,
    fin_of,
    not_found,
)
from ehis.simulators.world import world
from ehis.sources.yih import AUTHORITIES

_CLAIMED = {d for settings in AUTHORITIES.values() for d in settings.get("districts", [])}


def responder_for(authority: str) -> Responder:
    own = set(AUTHORITIES[authority].get("districts", []))

    def answers_for(district: str) -> bool:
        return district in own if own else district not in _CLAIMED

    def household(request: dict[str, Any]) -> dict[str, Any]:
        fin = fin_of(request)
        person = world().person(fin)
        if person is None:
            raise not_found(fin, "no person with this FIN")
        district = person.address.district_code
        if not answers_for(district):
            raise BusinessFault(f"{authority} does not answer for district {district}",
                                "{urn:az:gov:yih:v1}OutOfDistrict",
                                {"authority": authority, "districtCode": district}, Outcome.INVALID)
        h = world().household(fin)
        if h is None:
            raise not_found(fin, "the person belongs to no household")
        a = h.address
        return {"fin": fin, "householdId": h.id, "authority": authority,
                "address": {"text": a.text, "districtCode": a.district_code, "districtName": a.district_name},
                "member": [{"fin": member, "relation": relation.upper()} for member, relation in h.members]}

    return Responder((Operation("GetHousehold", household),))


@cache
def example_for(authority: str) -> dict[str, str]:
    """A person this authority answers for (the first such household head of the world's units):
    what the contract tests and a tester need, since each authority answers for its own districts."""
    own = set(AUTHORITIES[authority].get("districts", []))
    for unit in range(10_000):
        for slot in range(8):
            fin = world().fin_at(unit, slot)
            person = world().person(fin)
            if person is None or world().household(fin) is None:
                continue
            district = person.address.district_code
            if (district in own) if own else (district not in _CLAIMED):
                return {"fin": fin}
    raise LookupError(f"no resident of {authority}'s districts in the first units of the world")
