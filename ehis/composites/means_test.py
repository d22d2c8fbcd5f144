"""`vemtas.means-test`: a household's means for targeted social assistance, asked of a dozen
sources at once.

The household comes from the local authority of the applicant's district (`yih.household`,
routed through `din.person`); without it the answer means nothing, so its failure is the
reply's error. Then, for every member concurrently: income, real estate, land plots, vehicles,
days abroad, loans (every bureau), electricity, water and gas, IDP status, enrolment; and the
subsistence minimum of the period's last year. Each fact names the part it came from, with its
state and evidence; what could not be learned is listed in `incomplete`, never silently left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import model_validator

from ehis.cache import CachedAnswer, CacheStatus
from ehis.calls import CallContext, Outcome
from ehis.composites.gather import Ask, Gatherer, Result
from ehis.composites.models import Fact, Part, PartState
from ehis.identifiers import Fin
from ehis.mapping.models import Address, Canonical, UtilityConsumption
from ehis.mapping.queries import FinPeriodQuery
from ehis.policy import AccessPolicy
from ehis.sources.din.models import Vehicles
from ehis.sources.dsk.models import SubsistenceMinimum
from ehis.sources.dsx.models import BorderCrossings
from ehis.sources.emlak.models import RealEstate
from ehis.sources.kb.models import CreditReport
from ehis.sources.kend.models import LandPlots
from ehis.sources.qmkdk.models import IdpStatus
from ehis.sources.tehsil.models import Enrolments
from ehis.sources.vergiler.models import Income
from ehis.sources.yih.models import Member

# fact -> (service, whether it takes the period); the order is the answer's
FACTS: dict[str, tuple[str, bool]] = {
    "income": ("vergiler.income", True),
    "real_estate": ("emlak.real-estate", False),
    "land_plots": ("kend.land-plots", False),
    "vehicles": ("din.vehicles", False),
    "border_crossings": ("dsx.border-crossings", True),
    "loans": ("kb.credit-report", False),
    "electricity": ("azerishiq.consumption", True),
    "water": ("azersu.consumption", True),
    "gas": ("azeriqaz.consumption", True),
    "idp_status": ("qmkdk.idp-status", False),
    "enrolment": ("tehsil.enrolment", False),
}
SUBSISTENCE_GROUP = "total"


class MeansTestQuery(FinPeriodQuery):
    """The applicant and the period the means are assessed over."""


class MemberMeans(Canonical):
    fin: Fin
    relation: str
    income: Fact[Income]
    real_estate: Fact[RealEstate]
    land_plots: Fact[LandPlots]
    vehicles: Fact[Vehicles]
    border_crossings: Fact[BorderCrossings]
    loans: Fact[CreditReport]
    electricity: Fact[UtilityConsumption]
    water: Fact[UtilityConsumption]
    gas: Fact[UtilityConsumption]
    idp_status: Fact[IdpStatus]
    enrolment: Fact[Enrolments]


class Missing(Canonical):
    """A fact the hub could not learn: whose, which, from where, and why."""

    fin: str | None
    fact: str
    service: str
    error_code: str


class Household(Canonical):
    id: str
    authority: str
    address: Address


class MeansTest(Canonical):
    applicant: str
    period_start: date
    period_end: date
    household: Household
    household_part: Part
    members: list[MemberMeans]
    subsistence_minimum: Fact[SubsistenceMinimum]
    incomplete: list[Missing]

    @model_validator(mode="after")
    def _complete_or_listed(self) -> MeansTest:
        for member in self.members:
            for name in FACTS:
                fact = getattr(member, name)
                if fact.part.state is PartState.FAILED and not any(
                        m.fin == member.fin and m.fact == name for m in self.incomplete):
                    raise ValueError(f"{name} of a member failed but is not listed as incomplete")
        return self


class MeansTestHandler:
    def __init__(self, handlers: dict[str, Any], policy: AccessPolicy):
        self.params = MeansTestQuery
        self.handlers = handlers
        self.policy = policy

    async def answer(self, params: MeansTestQuery, ctx: CallContext) -> Outcome:  # type: ignore[override]
        gather = Gatherer(self.handlers, self.policy, ctx)
        household = await gather.one(Ask("yih.household", {"fin": params.fin}))
        if not household.ok:
            raise household.error()
        assert household.data is not None
        members: list[Member] = [Member.model_validate(m) for m in household.data["members"]]
        period = {"from": params.start.isoformat(), "to": params.end.isoformat()}
        asks: dict[str, Ask] = {"subsistence_minimum": Ask("dsk.subsistence-minimum", {
            "year": params.end.year, "group": SUBSISTENCE_GROUP})}
        for member in members:
            for fact, (service, dated) in FACTS.items():
                asks[f"{member.fin}/{fact}"] = Ask(service, {"fin": member.fin, **(period if dated else {})})
        results = await gather.ask(asks)
        answer = MeansTest(
            applicant=params.fin, period_start=params.start, period_end=params.end,
            household=Household(id=household.data["household_id"], authority=household.data["authority"],
                                address=Address.model_validate(household.data["address"])),
            household_part=household.part,
            members=[_member(m, results) for m in members],
            subsistence_minimum=_fact(results["subsistence_minimum"]),
            incomplete=_incomplete(results),
        )
        return Outcome(CachedAnswer(data=answer.model_dump(mode="json")), CacheStatus.MISS)


def _fact(result: Result) -> dict[str, Any]:
    return {"part": result.part, "data": result.data}


def _member(member: Member, results: Mapping[str, Result]) -> MemberMeans:
    facts = {name: _fact(results[f"{member.fin}/{name}"]) for name in FACTS}
    return MemberMeans.model_validate({"fin": member.fin, "relation": member.relation, **facts})


def _incomplete(results: Mapping[str, Result]) -> list[Missing]:
    out = []
    for key, result in results.items():
        if result.part.state is not PartState.FAILED:
            continue
        fin, _, fact = key.rpartition("/")
        out.append(Missing(fin=fin or None, fact=fact, service=result.part.service,
                           error_code=result.part.error_code or "internal"))
    return out

