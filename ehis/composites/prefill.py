"""`emek.contract-prefill`: an employment contract notification filled from the employer's VÖEN
and the employee's FIN, as the Cabinet's rules on such notifications (§4.1–4.2) say.

From the tax authority: the employer's name, VÖEN, SUN, legal and actual address, phones; for a
natural-person employer (VÖEN ending in 2) also the head's full name and identity document from
Internal Affairs. From Internal Affairs: the employee's full name, citizenship, identity
document, FIN, birth date, registered address and sex; for a foreign employee also the residence
and work permits from the Migration Service, with the work permit flagged when it is missing,
expired, or issued for another employer. A field the hub cannot fill is refused at once with the
reason (§8.2), never left silently empty. Without the employee's identity the notification means
nothing: then the reply is that part's error.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from ehis.cache import CachedAnswer, CacheStatus
from ehis.calls import CallContext, Outcome
from ehis.composites.gather import Ask, Gatherer, Result
from ehis.composites.models import Part, Refusal
from ehis.identifiers import Fin, Voen
from ehis.mapping.models import Address, Canonical, IdentityDocument, Person
from ehis.mapping.queries import Query
from ehis.policy import AccessPolicy
from ehis.sources.dmx.models import Residence, ResidencePermit, WorkPermit, WorkPermits
from ehis.sources.vergiler.models import Taxpayer

CITIZENSHIP = "AZE"
EMPLOYER_FIELDS = ("employer.name", "employer.voen", "employer.sun", "employer.legal_address",
                   "employer.actual_address", "employer.phones")
NO_SSN = ("no source of the statute holds the social insurance number: the employee gives it "
          "(a first-time worker has none yet)")


class PrefillQuery(Query):
    employer_voen: Voen
    employee_fin: Fin
    on: date | None = Field(None, description="the day the contract starts (permits are checked for it); today")


class Head(Canonical):
    """The natural-person employer's own identity (an individual entrepreneur)."""

    fin: str
    surname: str
    name: str
    patronymic: str
    document: IdentityDocument


class Employer(Canonical):
    voen: str
    kind: Literal["legal_entity", "natural_person"]
    name: str
    sun: str
    legal_form: str
    legal_address: Address
    actual_address: Address
    phones: list[str]
    status: str
    head: Head | None = None


class Employee(Canonical):
    fin: str
    surname: str
    name: str
    patronymic: str
    birth_date: date
    sex: Literal["male", "female"]
    citizenship: str
    document: IdentityDocument
    address: Address


class Permits(Canonical):
    """A foreign employee's permits as the Migration Service holds them, checked for the contract."""

    required: bool
    residence: ResidencePermit | None = None
    residence_status: Literal["not_required", "valid", "missing", "expired", "unknown"]
    work_permit: WorkPermit | None = None
    work_permit_status: Literal["not_required", "valid", "missing", "expired", "not_yet_valid", "other_employer",
                                "unknown"]


class ContractPrefill(Canonical):
    checked_on: date
    employer: Employer | None
    employee: Employee
    permits: Permits
    refused: list[Refusal]
    parts: list[Part]


class ContractPrefillHandler:
    def __init__(self, handlers: dict[str, Any], policy: AccessPolicy):
        self.params = PrefillQuery
        self.handlers = handlers
        self.policy = policy

    async def answer(self, params: PrefillQuery, ctx: CallContext) -> Outcome:  # type: ignore[override]
        gather = Gatherer(self.handlers, self.policy, ctx)
        first = await gather.ask({
            "taxpayer": Ask("vergiler.taxpayer", {"voen": params.employer_voen}),
            "employee": Ask("din.person", {"fin": params.employee_fin}),
        })
        employee = first["employee"]
        if not employee.ok:
            raise employee.error()
        person = Person.model_validate(employee.data)
        taxpayer = Taxpayer.model_validate(first["taxpayer"].data) if first["taxpayer"].ok else None
        foreign = person.citizenship != CITIZENSHIP
        then: dict[str, Ask] = {}
        if taxpayer is not None and taxpayer.kind == "natural_person":
            then["head"] = Ask("din.person", {"fin": taxpayer.head_fin})
        if foreign:
            then["residence"] = Ask("dmx.residence-permit", {"fin": person.fin})
            then["work"] = Ask("dmx.work-permit", {"fin": person.fin})
        second = await gather.ask(then)
        day = params.on or date.today()
        refused = [Refusal(field="employee.ssn", reason=NO_SSN)]
        if person.death_date is not None:
            refused.append(Refusal(field="employee", reason=f"Internal Affairs records the employee's death "
                                                            f"on {person.death_date.isoformat()}"))
        employer = _employer(taxpayer, first["taxpayer"], second.get("head"), refused)
        permits = _permits(foreign, params.employer_voen, day, second, refused)
        answer = ContractPrefill(
            checked_on=day, employer=employer, employee=Employee.model_validate(person.model_dump(exclude={"death_date"})),
            permits=permits, refused=refused, parts=[r.part for r in (*first.values(), *second.values())])
        return Outcome(CachedAnswer(data=answer.model_dump(mode="json")), CacheStatus.MISS)


def _why(result: Result | None, what: str) -> str:
    if result is None:
        return f"{what} was not asked"
    if result.part.state == "not_found":
        return f"{what}: the source holds no record"
    return f"{what} did not answer ({result.part.error_code})"


def _employer(taxpayer: Taxpayer | None, asked: Result, head: Result | None, refused: list[Refusal]) -> Employer | None:
    if taxpayer is None:
        refused += [Refusal(field=f, reason=_why(asked, "the tax authority")) for f in EMPLOYER_FIELDS]
        return None
    if taxpayer.status != "active":
        refused.append(Refusal(field="employer", reason=f"the taxpayer is {taxpayer.status}, not active"))
    found = None
    if head is not None:
        if head.ok:
            p = Person.model_validate(head.data)
            found = Head(fin=p.fin, surname=p.surname, name=p.name, patronymic=p.patronymic, document=p.document)
        else:
            refused.append(Refusal(field="employer.head", reason=_why(head, "Internal Affairs")))
    return Employer(voen=taxpayer.voen, kind=taxpayer.kind, name=taxpayer.name, sun=taxpayer.sun,
                    legal_form=taxpayer.legal_form, legal_address=taxpayer.legal_address,
                    actual_address=taxpayer.actual_address, phones=taxpayer.phones, status=taxpayer.status,
                    head=found)


def _valid_on(start: date, end: date | None, day: date) -> bool:
    return start <= day and (end is None or day <= end)


def _permits(foreign: bool, voen: str, day: date, asked: dict[str, Result], refused: list[Refusal]) -> Permits:
    if not foreign:
        return Permits(required=False, residence_status="not_required", work_permit_status="not_required")
    residence, work = asked["residence"], asked["work"]
    if residence.ok:
        permit = Residence.model_validate(residence.data).permit
        r_status = "missing" if permit is None else "valid" if _valid_on(permit.valid.start, permit.valid.end, day) \
            else "expired"
    else:
        permit, r_status = None, "unknown"
        refused.append(Refusal(field="permits.residence", reason=_why(residence, "the Migration Service")))
    if not work.ok:
        refused.append(Refusal(field="permits.work_permit", reason=_why(work, "the Migration Service")))
        return Permits(required=True, residence=permit, residence_status=r_status, work_permit_status="unknown")
    chosen, status = _work_permit(WorkPermits.model_validate(work.data).permits, voen, day)
    return Permits(required=True, residence=permit, residence_status=r_status, work_permit=chosen,
                   work_permit_status=status)


def _work_permit(permits: list[WorkPermit], voen: str, day: date) -> tuple[WorkPermit | None, str]:
    """The permit that decides, and what it says: valid for this employer; else expired (or not
    yet valid) for this employer; else other_employer (valid, for someone else); else missing."""
    mine = [p for p in permits if p.employer_voen == voen]
    valid = [p for p in mine if _valid_on(p.valid.start, p.valid.end, day)]
    if valid:
        return valid[-1], "valid"
    if mine:
        return mine[-1], "not_yet_valid" if mine[-1].valid.start > day else "expired"
    others = [p for p in permits if _valid_on(p.valid.start, p.valid.end, day)]
    if others:
        return others[-1], "other_employer"
    return None, "missing"
