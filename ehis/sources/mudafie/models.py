"""The canonical military service record: only the Ministry of Defence returns it, so it lives here."""

from __future__ import annotations

from typing import Any, Literal

from ehis.mapping.models import Canonical, Period

UnitType = Literal["motor_rifle", "artillery", "tank", "air_defence", "signals", "navy", "engineers",
                   "border_troops"]
DischargeReason = Literal["end_of_term", "demobilisation", "health", "age_limit", "death"]


class ServicePeriod(Period):
    """A period served (`end` None: still serving), where, why it ended, and whether in a war."""

    unit_type: UnitType
    discharge_reason: DischargeReason | None = None  # None while still serving
    combat: bool

    @classmethod
    def from_contract(cls, p: dict[str, Any]) -> ServicePeriod:
        reason = p["dischargeReason"]
        return cls(start=p["from"], end=p["to"], unit_type=p["unitType"].lower(),
                   discharge_reason=reason.lower() if reason else None, combat=p["combat"])


class ServiceRecord(Canonical):
    fin: str
    periods: list[ServicePeriod]  # oldest first; empty for someone who never served
    combat_veteran: bool

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> ServiceRecord:
        return cls(fin=body["fin"], periods=[ServicePeriod.from_contract(p) for p in body["period"]],
                   combat_veteran=body["combatVeteran"])
