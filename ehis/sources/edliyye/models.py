"""The canonical civil status acts: only the Ministry of Justice returns them, so they live here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ehis.events.payload import MalformedEvent, only, same_subject
from ehis.mapping.models import Canonical


def _act(a: dict[str, Any]) -> dict[str, Any]:
    """The fields every act of the contract begins with, by their canonical names."""
    return {"number": a["number"], "date": a["date"], "registry_office": a["registryOffice"]}


class CivilAct(Canonical):
    """What every act has: its number (`AD-`, `NK-`, `NP-`, `OL-<year>-<7 digits>`), day and office."""

    number: str
    date: dt.date  # the day of the event
    registry_office: str

    @classmethod
    def from_contract(cls, a: dict[str, Any]) -> CivilAct:
        return cls(**_act(a))


class BirthAct(CivilAct):
    fin: str  # the child
    father: str | None = None  # None when the registry does not link the parent
    mother: str | None = None

    @classmethod
    def from_contract(cls, a: dict[str, Any]) -> BirthAct:
        return cls(**_act(a), fin=a["fin"], father=a["father"], mother=a["mother"])


class MarriageAct(CivilAct):
    """A marriage or a divorce act: one record, the same from the husband's and the wife's side."""

    husband: str
    wife: str

    @classmethod
    def from_contract(cls, a: dict[str, Any]) -> MarriageAct:
        return cls(**_act(a), husband=a["husband"], wife=a["wife"])


class CivilActs(Canonical):
    fin: str
    birth: BirthAct | None  # None for a foreigner (born abroad)
    marriages: list[MarriageAct]
    divorces: list[MarriageAct]
    death: CivilAct | None
    children: list[BirthAct]  # the children's birth acts: their FINs, with this person as a parent

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> CivilActs:
        birth, death = body["birth"], body["death"]
        return cls(fin=body["fin"], birth=BirthAct.from_contract(birth) if birth else None,
                   marriages=[MarriageAct.from_contract(a) for a in body["marriage"]],
                   divorces=[MarriageAct.from_contract(a) for a in body["divorce"]],
                   death=CivilAct.from_contract(death) if death else None,
                   children=[BirthAct.from_contract(a) for a in body["childBirth"]])


class Death(CivilAct):
    """A death registered: the deceased and the death act (the `edliyye.death` event)."""

    fin: str


EVENT_ACTS = ("birth", "death", "marriage", "divorce")  # the Event's payload elements, named as its kinds


def _act_of(e: dict[str, Any]) -> dict[str, Any]:
    """The act the event's kind names, and no other."""
    name, act = only(e, *EVENT_ACTS)
    if name != e["kind"]:
        raise MalformedEvent(f"a {e['kind']} event carries a {name} act")
    return act


def birth_event(e: dict[str, Any]) -> BirthAct:
    act = BirthAct.from_contract(_act_of(e))
    same_subject(e, act.fin)
    return act


def death_event(e: dict[str, Any]) -> Death:
    return Death(**_act(_act_of(e)), fin=e["fin"])


def union_event(e: dict[str, Any]) -> MarriageAct:
    """A marriage or a divorce: the fin is the husband's."""
    union = MarriageAct.from_contract(_act_of(e))
    same_subject(e, union.husband)
    return union
