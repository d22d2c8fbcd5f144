"""The canonical permits: only the Migration Service returns them, so they live here.

"No permit" is data, not an error: `Residence.permit` None and `WorkPermits.permits` empty say
the service holds none for a person it knows (a citizen needs none; a foreigner without one is
what the employment-contract prefill flags), while a FIN nobody holds stays NotFound.
"""

from __future__ import annotations

from typing import Any, Literal

from ehis.events.payload import only
from ehis.mapping.models import Canonical, Period


class ResidencePermit(Canonical):
    series: str
    number: str
    kind: Literal["temporary", "permanent"]
    valid: Period


class Residence(Canonical):
    """A person's current residence permit; None when they hold none."""

    fin: str
    permit: ResidencePermit | None

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> Residence:
        p = body["residencePermit"]
        permit = None if p is None else ResidencePermit(series=p["series"], number=p["number"],
                                                        kind=p["kind"].lower(),
                                                        valid=Period.from_contract(p["validity"]))
        return cls(fin=body["fin"], permit=permit)


class WorkPermit(Canonical):
    number: str
    employer_voen: str
    position: str
    valid: Period


class WorkPermits(Canonical):
    """Every work permit issued to a person, oldest first; empty when they hold none."""

    fin: str
    permits: list[WorkPermit]

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> WorkPermits:
        return cls(fin=body["fin"], permits=[
            WorkPermit(number=w["number"], employer_voen=w["employerVoen"], position=w["position"],
                       valid=Period.from_contract(w["validity"]))
            for w in body["workPermit"]
        ])


class PermitChange(Canonical):
    """A permit issued, about to expire, or expired (the `dmx.permit-*` events): exactly one of the two."""

    fin: str
    residence_permit: ResidencePermit | None = None
    work_permit: WorkPermit | None = None

    @classmethod
    def from_event(cls, e: dict[str, Any]) -> PermitChange:
        name, p = only(e, "residencePermit", "workPermit")
        if name == "residencePermit":
            return cls(fin=e["fin"], residence_permit=ResidencePermit(
                series=p["series"], number=p["number"], kind=p["kind"].lower(), valid=Period.from_contract(p["validity"])))
        return cls(fin=e["fin"], work_permit=WorkPermit(number=p["number"], employer_voen=p["employerVoen"],
                                                        position=p["position"], valid=Period.from_contract(p["validity"])))
