"""The canonical refugee/IDP status: only the committee returns it, so it lives here."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from ehis.mapping.models import Address, Canonical


class IdpStatus(Canonical):
    """`status` "none" (holds none) carries no details; "idp" and "refugee" carry them all.

    `family_members` are the FINs of the other living family members holding the status too.
    """

    fin: str
    status: Literal["none", "idp", "refugee"]
    region_of_origin: str | None = None
    since: date | None = None
    temporary_residence: Address | None = None
    family_members: list[str] = Field(default_factory=list)

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> IdpStatus:
        held = body["displacement"]
        if held is None:
            return cls(fin=body["fin"], status="none")
        return cls(fin=body["fin"], status=held["status"].lower(), region_of_origin=held["regionOfOrigin"],
                   since=held["since"], temporary_residence=Address.from_contract(held["temporaryResidence"]),
                   family_members=held["familyMember"])


def status_event(e: dict[str, Any]) -> IdpStatus:
    """The status from the event's `since` on; "none" when it was withdrawn (the `qmkdk.status-changed` event)."""
    status = IdpStatus.from_contract(e)
    return status if status.status != "none" else IdpStatus(fin=status.fin, status="none", since=e["since"])
