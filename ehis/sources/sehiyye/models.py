"""The canonical referrals: only the Ministry of Health returns them, so they live here."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from ehis.mapping.models import Canonical


class Referral(Canonical):
    number: str
    kind: Literal["sanatorium", "disability_assessment"]
    institution: str
    icd10: str
    issued_on: date
    valid_until: date  # the last day it may be used

    @classmethod
    def from_contract(cls, r: dict[str, Any]) -> Referral:
        return cls(number=r["number"], kind=r["kind"].lower(), institution=r["institution"], icd10=r["icd10Code"],
                   issued_on=r["issueDate"], valid_until=r["validUntil"])


class Referrals(Canonical):
    """A person's referrals, oldest first; an empty list when none was issued."""

    fin: str
    referrals: list[Referral]

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> Referrals:
        return cls(fin=body["fin"], referrals=list(map(Referral.from_contract, body["referral"])))


class ReferralIssued(Canonical):
    """A referral issued to `fin` (the `sehiyye.referral-issued` event)."""

    fin: str
    referral: Referral

    @classmethod
    def from_event(cls, e: dict[str, Any]) -> ReferralIssued:
        return cls(fin=e["fin"], referral=Referral.from_contract(e["referral"]))
