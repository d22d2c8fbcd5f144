"""The Ministry of Justice as the simulators play it: the civil acts of the synthetic world.

Every person the world holds answers (ehis.simulators.world.civil): a citizen's birth act, the
marriage and divorce acts they are a party to, a death act once one is registered (overlay deaths
included), and their children's birth acts. A foreigner has no act here but a death act, so the
answer may carry the FIN alone: having no act is not a business outcome. A FIN nobody holds (those
starting with 0) is the NotFound fault, a malformed FIN the InvalidInput fault.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.events import changes_operation
from ehis.simulators.responders import Operation, Responder, fin_of, not_found
from ehis.simulators.world import CivilAct, world
from ehis.simulators.world.overlay import Change


def _head(act: CivilAct) -> dict[str, Any]:
    """The fields every act type of the contract begins with."""
    return {"number": act.number, "date": act.date, "registryOffice": act.registry_office}


def _birth(act: CivilAct) -> dict[str, Any]:
    return {"fin": act.subject, **_head(act), "father": act.father, "mother": act.mother}


def _union(act: CivilAct) -> dict[str, Any]:
    return {**_head(act), "husband": act.subject, "wife": act.partner}


def get_civil_acts(request: dict[str, Any]) -> dict[str, Any]:
    fin = fin_of(request)
    acts = world().civil_acts(fin)
    if acts is None:
        raise not_found(fin, "no person with this FIN in the civil registry")
    return {
        "fin": acts.fin,
        "birth": _birth(acts.birth) if acts.birth else None,
        "marriage": [_union(a) for a in acts.marriages],
        "divorce": [_union(a) for a in acts.divorces],
        "death": _head(acts.death) if acts.death else None,
        "childBirth": [_birth(a) for a in acts.children_births],
    }


_EVENT_ACTS = {"birth": _birth, "death": _head, "marriage": _union, "divorce": _union}


def EVENT(change: Change) -> dict[str, Any]:
    """A birth, death, marriage or divorce registered: the act, as GetCivilActs returns it from then on."""
    return {change.kind: _EVENT_ACTS[change.kind](change.record)}


RESPONDER = Responder((Operation("GetCivilActs", get_civil_acts), changes_operation("edliyye")))
