"""Credit bureaus (Kredit büroları): several bureaus behind one contract, asked together."""

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from ehis.routing import ProviderResult, fan_out
from ehis.sources.kb.models import (
    BureauAnswer,
    BureauReport,
    CreditQuery,
    CreditReport,
    Loan,
)
from ehis.sources.spec import Service, Source

BUREAUS = {f"kb-{code}": {} for code in ("akb", "mkr", "fkb")}  # the simulated world's three bureaus


def merge(params: BaseModel, results: Sequence[ProviderResult]) -> CreditReport:
    """Loans deduplicated by id, each naming the bureaus that reported it; every bureau's status."""
    loans: dict[str, tuple[dict[str, Any], list[str]]] = {}
    bureaus = []
    for r in results:
        code = r.provider.removeprefix("kb-")
        evidence = r.outcome.answer.evidence if r.outcome is not None else None
        if r.outcome is None or r.outcome.data is None:
            bureaus.append(BureauAnswer(bureau=code, answered=r.outcome is not None,
                                        error_code=r.error.code.value if r.error else None,
                                        signed_by=evidence.signer if evidence else None,
                                        evidence=evidence.digest if evidence else None))
            continue
        for loan in r.outcome.data["loans"]:
            loans.setdefault(loan["loanId"], (loan, []))[1].append(code)
        bureaus.append(BureauAnswer(bureau=code, answered=True, signed_by=evidence.signer if evidence else None,
                                    evidence=evidence.digest if evidence else None))
    return CreditReport(fin=params.fin, bureaus=bureaus,
                        loans=[Loan.from_contract(loan, by) for loan, by in loans.values()])


SOURCE = Source.of(
    __file__,
    providers=BUREAUS,
    services=(
        Service("kb.credit-report", "GetCreditReport", params=CreditQuery, model=CreditReport, cache_ttl=None,
                mapper=lambda body: BureauReport(fin=body["fin"] or "", bureau=body["bureau"] or "", loans=body["loan"]),
                request=lambda p: {"fin": p.fin}, answer_subject=("fin",),
                handler=fan_out(merge, choose="bureau"),
                example={"fin": "5GXM4DZ"}, missing={"fin": "0AB12CD"}),
    ),
)
