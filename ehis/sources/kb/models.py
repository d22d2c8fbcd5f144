"""The merged credit report: every bureau's loans, each with the bureaus that reported it, and
which bureaus answered (with the evidence of each signed answer) and which did not."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ehis.identifiers import Fin
from ehis.mapping.models import Canonical, Money


class CreditQuery(BaseModel):
    """Params of kb.credit-report: a person, and optionally one bureau to ask (default: all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fin: Fin
    bureau: str | None = None


class Loan(Canonical):
    loan_id: str
    reported_by: list[str]  # the bureaus that hold it (the same loan id at each)
    lender: str
    kind: str
    start: date
    end: date
    amount: Money
    outstanding: Money
    monthly_payment: Money
    status: Literal["active", "closed", "overdue"]

    @classmethod
    def from_contract(cls, loan: dict[str, Any], bureaus: Sequence[str]) -> Loan:
        return cls(loan_id=loan["loanId"], reported_by=list(bureaus), lender=loan["lender"], kind=loan["kind"],
                   start=loan["startDate"], end=loan["endDate"], amount=loan["amount"],
                   outstanding=loan["outstanding"], monthly_payment=loan["monthlyPayment"],
                   status=loan["status"].lower())


class BureauAnswer(Canonical):
    bureau: str
    answered: bool
    error_code: str | None = None  # why a bureau that did not answer failed
    signed_by: str | None = None
    evidence: str | None = None  # digest of its signed answer


class BureauReport(Canonical):
    """One bureau's own answer, as the source package maps it before the merge."""

    fin: str
    bureau: str
    loans: list[dict[str, Any]]


class CreditReport(Canonical):
    fin: str
    loans: list[Loan]
    bureaus: list[BureauAnswer]
