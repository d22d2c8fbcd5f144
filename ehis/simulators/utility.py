"""The utilities as the simulators play them (azerishiq, azersu, azeriqaz): one responder, by kind.

From the synthetic world (ehis.simulators.world.utilities): only the head of a household
subscribes, at the household's registered address. So for a FIN the registry holds the answer
always comes, with the subscription when there is one and without it otherwise (a spouse, a
child, the deceased: "no subscription"); a FIN no registry holds (starting with 0) is the
NotFound fault, a malformed FIN or a period that is reversed or longer than a caller may ask
(ehis.mapping.queries) the InvalidInput fault. The monthly series is each asked month from the
subscription's start on; the debt is the world's balance at REFERENCE_DATE.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from ehis.mapping.queries import MAX_PERIOD_DAYS
from ehis.simulators.responders import Operation, Responder, fin_of, invalid, not_found
from ehis.simulators.world import REFERENCE_DATE, UTILITY_KINDS, Consumption, world
from ehis.simulators.world.utilities import UNITS_OF


def consumption_responder(operation: str, kind: str) -> Responder:
    """The responder of a utility's one operation, answering for the world's `kind` of utility."""
    if kind not in UTILITY_KINDS:
        raise ValueError(f"unknown utility {kind!r}; one of {', '.join(UTILITY_KINDS)}")
    return Responder((Operation(operation, partial(answer, kind)),))


def answer(kind: str, request: dict[str, Any]) -> dict[str, Any]:
    """`GetXConsumptionResponse`: the person's FIN, the unit, and the subscription if they hold one."""
    fin = fin_of(request)
    first, last = period_of(request)
    if world().person(fin) is None:
        raise not_found(fin, "no person with this FIN in the registry")
    use = world().consumption(fin, kind, first, last)
    return {"fin": fin, "unit": UNITS_OF[kind], "subscription": None if use is None else subscription(use)}


def period_of(request: dict[str, Any]) -> tuple[dt.date, dt.date]:
    """The asked period; the InvalidInput fault when it is reversed or too long (as the hub checks)."""
    first, last = request.get("from"), request.get("to")
    if not isinstance(first, dt.date) or not isinstance(last, dt.date):
        raise invalid("from" if not isinstance(first, dt.date) else "to", "a date, YYYY-MM-DD")
    if first > last:
        raise invalid("to", "'to' must not be before 'from'")
    if (last - first).days > MAX_PERIOD_DAYS:
        raise invalid("to", f"the period may span at most {MAX_PERIOD_DAYS} days")
    return first, last


def subscription(use: Consumption) -> dict[str, Any]:
    """ehis:UtilitySubscription as a dict."""
    s, a = use.subscription, use.subscription.address
    return {
        "subscriberCode": s.subscriber_code,
        "address": {"text": a.text, "districtCode": a.district_code, "districtName": a.district_name},
        "since": s.since, "debt": s.debt, "debtOn": REFERENCE_DATE,
        "monthly": [{"month": f"{u.month:%Y-%m}", "amount": u.amount} for u in use.months],
    }
