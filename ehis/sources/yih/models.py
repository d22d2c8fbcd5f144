"""The family composition certificate: only the local authorities issue it."""

from __future__ import annotations

from typing import Any, Literal

from ehis.mapping.models import Address, Canonical


class Member(Canonical):
    fin: str
    relation: Literal["head", "spouse", "child", "parent", "other"]


class Household(Canonical):
    fin: str  # whom it was asked for
    household_id: str
    authority: str  # the local executive authority that issued it
    address: Address
    members: list[Member]

    @classmethod
    def from_contract(cls, h: dict[str, Any]) -> Household:
        return cls(fin=h["fin"], household_id=h["householdId"], authority=h["authority"],
                   address=Address.from_contract(h["address"]),
                   members=[Member(fin=m["fin"], relation=m["relation"].lower()) for m in h["member"]])
