"""The credit bureaus as the simulators play them: each endpoint (`kb-akb`, ...) is one bureau
and answers the loans the synthetic world reports to it (a loan may be at several bureaus, with
the same id). A person a bureau has nothing on gets an empty report. Business errors come in the
response body (a FIN no registry holds: not_found; a malformed one: invalid_input)."""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import (
    BodyFault,
    BusinessFault,
    Operation,
    Responder,
    fin_of,
    not_found,
)
from ehis.simulators.world import world
from ehis.simulators.world.credit import Loan


def _loan(loan: Loan) -> dict[str, Any]:
    return {"loanId": loan.id, "lender": loan.lender, "kind": loan.kind, "startDate": loan.start,
            "endDate": loan.end, "amount": loan.amount, "outstanding": loan.outstanding,
            "monthlyPayment": loan.monthly_payment, "status": loan.status.upper()}


def responder_for(endpoint: str) -> Responder:
    bureau = endpoint.removeprefix("kb-")

    def report(request: dict[str, Any]) -> dict[str, Any]:
        try:
            fin = fin_of(request)
        except BusinessFault as invalid:
            raise BodyFault(invalid) from None
        if world().person(fin) is None:
            raise BodyFault(not_found(fin, "no person with this FIN"))
        return {"fin": fin, "bureau": bureau, "loan": [_loan(x) for x in world().loans(fin, bureau)]}

    return Responder((Operation("GetCreditReport", report),))
