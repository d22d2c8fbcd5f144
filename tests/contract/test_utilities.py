"""The three utilities (azerishiq, azersu, azeriqaz `.consumption`) through their SOAP contracts.

Each call goes from the hub's adapter to the simulators in process (httpx.ASGITransport), signed
both ways and validated against the contract, then through the service's mapper; what the world
holds is the oracle. The contract base (tests/contract/base.py) already runs for each utility;
these are the utilities' own rules and the rules they share with din.person and yih's households.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from pydantic import ValidationError

from ehis.errors import InvalidInput, NotFound
from ehis.mapping.models import Address, Person, UtilityConsumption
from ehis.mapping.queries import MAX_PERIOD_DAYS, FinPeriodQuery
from ehis.security.pki import Pki
from ehis.simulators import create_app
from ehis.simulators.world import REFERENCE_DATE, world
from ehis.simulators.world.dates import months
from ehis.sources import source
from tests.contract.support import CALLER, make_adapter

UTILITIES = {"azerishiq": ("electricity", "kWh"), "azersu": ("water", "m3"), "azeriqaz": ("gas", "m3")}
# Each package's example (a seeded search of the world, hard-coded there): its subscription's code and debt.
KNOWN = {"azerishiq": ("N9YQMYF", "5288657432", Decimal("161.33")),
         "azersu": ("H2HG2DK", "8976435707", Decimal("312.86")),
         "azeriqaz": ("EZKAHMJ", "6256511491", Decimal("79.64"))}
RECENT = "A1PXGVY"  # heads a home of three (spouse, child) whose subscriptions all began in August 2021
DECEASED = "L75GWDE"  # died 2020-07-25: in din's registry, in no household
NOBODY = "0AB12CD"
YEAR_2024 = {"from": "2024-01-01", "to": "2024-12-31"}
EHIS_XSD = Path(__file__).parents[2] / "ehis" / "contracts" / "schemas" / "ehis.xsd"

each_utility = pytest.mark.parametrize("code", list(UTILITIES))


@pytest.fixture
def asgi(pki: Pki) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(pki))


async def raw(pki: Pki, asgi: httpx.ASGITransport, code: str, query: Any) -> dict[str, Any]:
    """The decoded, verified answer of `code`'s one service to `query` (a params model, not re-checked)."""
    service = source(code).services[0]
    adapter, http = make_adapter(pki, code, asgi)
    async with http:
        return (await adapter.call(service, query, CALLER, 5)).body


async def consumption(pki: Pki, asgi: httpx.ASGITransport, code: str, fin: str,
                      period: dict[str, str] | None = None) -> UtilityConsumption:
    service = source(code).services[0]
    body = await raw(pki, asgi, code, service.params.model_validate({"fin": fin, **(period or YEAR_2024)}))
    model = service.mapper(body)
    assert isinstance(model, UtilityConsumption)
    return model


async def registered_address(pki: Pki, asgi: httpx.ASGITransport, fin: str) -> Address:
    """The person's registered address as din.person answers it through din's contract."""
    service = source("din").service("din.person")
    assert service is not None
    person = service.mapper(await raw(pki, asgi, "din", service.params.model_validate({"fin": fin})))
    assert isinstance(person, Person)
    return person.address


def month_list(first: str, last: str) -> list[dt.date]:
    return months(dt.date.fromisoformat(first), dt.date.fromisoformat(last))


# -- params --------------------------------------------------------------------------------------

@each_utility
def test_params_are_a_fin_and_an_ordered_period_of_at_most_five_years(code: str) -> None:
    params = source(code).services[0].params
    assert params is FinPeriodQuery
    day = params.model_validate({"fin": "5GXM4DZ", "from": "2024-03-01", "to": "2024-03-01"})
    assert (day.start, day.end) == (dt.date(2024, 3, 1), dt.date(2024, 3, 1))
    longest = dt.date(2020, 1, 1) + dt.timedelta(days=MAX_PERIOD_DAYS)
    assert params.model_validate({"fin": "5GXM4DZ", "from": "2020-01-01", "to": longest.isoformat()}).end == longest
    refused = [
        ({"fin": "5GXM4DZ", "from": "2024-03-02", "to": "2024-03-01"}, "must not be after"),
        ({"fin": "5GXM4DZ", "from": "2020-01-01", "to": (longest + dt.timedelta(days=1)).isoformat()}, "at most"),
        ({"fin": "5GXM4DZ", "from": "2024-01-01"}, "to"),
        ({"fin": "5GXM4D", **YEAR_2024}, "fin"),
        ({"fin": "5GXM4DZ", **YEAR_2024, "kind": "gas"}, "kind"),
    ]
    for values, reason in refused:
        with pytest.raises(ValidationError, match=reason):
            params.model_validate(values)


@each_utility
@pytest.mark.parametrize(("first", "last"), [
    (dt.date(2024, 3, 2), dt.date(2024, 3, 1)),
    (dt.date(2015, 1, 1), dt.date(2015, 1, 1) + dt.timedelta(days=MAX_PERIOD_DAYS + 1)),
], ids=["reversed", "too long"])
async def test_the_source_itself_refuses_a_reversed_or_too_long_period(pki: Pki, asgi, code: str, first: dt.date,
                                                                      last: dt.date) -> None:
    """What the hub validates the source checks again: a signed InvalidInput fault on `to`, not data."""
    sneaked = FinPeriodQuery.model_construct(fin=KNOWN[code][0], start=first, end=last)
    with pytest.raises(InvalidInput, match="invalid to") as raised:
        await raw(pki, asgi, code, sneaked)
    assert raised.value.source == code and raised.value.evidence is not None


# -- a known subscriber --------------------------------------------------------------------------

@each_utility
async def test_a_known_subscriber_maps_into_the_canonical_model(pki: Pki, asgi, code: str) -> None:
    fin, subscriber_code, debt = KNOWN[code]
    kind, unit = UTILITIES[code]
    answer = await consumption(pki, asgi, code, fin)
    assert (answer.fin, answer.unit) == (fin, unit)
    held = answer.subscription
    assert held is not None
    assert (held.subscriber_code, held.debt, held.debt_on, held.since) == (subscriber_code, debt, REFERENCE_DATE,
                                                                           dt.date(2010, 1, 1))
    assert [m.month for m in held.months] == [dt.date(2024, n, 1) for n in range(1, 13)]
    world_use = world().consumption(fin, kind, dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert world_use is not None
    assert [m.amount for m in held.months] == [u.amount for u in world_use.months]
    assert all(m.amount > 0 for m in held.months)
    assert answer.model_dump(mode="json")["subscription"]["debt"] == str(debt)  # no cent lost to a float


async def test_one_head_has_three_subscriptions_at_one_address_in_three_units(pki: Pki, asgi) -> None:
    fin = KNOWN["azerishiq"][0]
    answers = {code: await consumption(pki, asgi, code, fin) for code in UTILITIES}
    assert {code: a.unit for code, a in answers.items()} == {code: unit for code, (_, unit) in UTILITIES.items()}
    held = [a.subscription for a in answers.values()]
    assert all(h is not None for h in held)
    assert len({h.address for h in held if h}) == 1
    assert len({h.subscriber_code for h in held if h}) == 3


# -- rules shared with din.person and the household ----------------------------------------------

@each_utility
async def test_the_subscription_address_is_the_subscribers_registered_address_in_din(pki: Pki, asgi,
                                                                                     code: str) -> None:
    for fin in {*(known[0] for known in KNOWN.values()), RECENT}:
        held = (await consumption(pki, asgi, code, fin)).subscription
        assert held is not None, fin
        assert held.address == await registered_address(pki, asgi, fin), fin


@each_utility
async def test_after_a_move_the_subscription_follows_the_registered_address(pki: Pki, asgi, code: str) -> None:
    before = (await consumption(pki, asgi, code, RECENT)).subscription
    assert before is not None
    target = "AZ-SAB" if before.address.district_code != "AZ-SAB" else "AZ-QBA"
    try:
        world().change_address(RECENT, target)
        after = (await consumption(pki, asgi, code, RECENT)).subscription
        moved = await registered_address(pki, asgi, RECENT)
    finally:
        world().reset_overlay()
    assert moved.district_code == target and moved != before.address
    assert after is not None and after.address == moved
    assert after.subscriber_code != before.subscriber_code  # a new address, a new subscriber code


@each_utility
async def test_only_the_household_head_subscribes_the_others_have_no_subscription(pki: Pki, asgi,
                                                                                 code: str) -> None:
    """The documented answer for a person the registry holds who is not a head: the answer, with
    no subscription. `not_found` is kept for a FIN no registry holds, so a means test asking every
    member of a household tells the two apart."""
    home = world().household(RECENT)
    assert home is not None and home.head == RECENT
    others = [fin for fin, relation in home.members if relation != "head"]
    assert len(others) == 2
    assert (await consumption(pki, asgi, code, RECENT)).subscription is not None
    for fin in [*others, DECEASED]:
        answer = await consumption(pki, asgi, code, fin)
        assert answer.fin == fin and answer.unit == UTILITIES[code][1]
        assert answer.subscription is None, fin
    with pytest.raises(NotFound):
        await consumption(pki, asgi, code, NOBODY)


# -- the monthly series --------------------------------------------------------------------------

@each_utility
@pytest.mark.parametrize(("first", "last"), [
    ("2023-03-15", "2024-02-10"),  # days inside the months do not matter
    ("2024-06-30", "2024-06-30"),  # one day: its month
    ("2024-11-01", "2025-04-30"),  # past REFERENCE_DATE the series goes on
])
async def test_the_monthly_series_covers_exactly_the_asked_months(pki: Pki, asgi, code: str, first: str,
                                                                  last: str) -> None:
    held = (await consumption(pki, asgi, code, KNOWN[code][0], {"from": first, "to": last})).subscription
    assert held is not None
    assert [m.month for m in held.months] == month_list(first, last)


@each_utility
async def test_a_series_begins_no_earlier_than_the_subscription(pki: Pki, asgi, code: str) -> None:
    """Asked months before the subscription began have no entry (there was nothing to meter); a
    period wholly before it is still the subscription, with no months."""
    straddling = (await consumption(pki, asgi, code, RECENT, {"from": "2021-01-01", "to": "2021-12-31"})).subscription
    assert straddling is not None and straddling.since == dt.date(2021, 8, 1)
    assert [m.month for m in straddling.months] == month_list("2021-08-01", "2021-12-31")
    before = (await consumption(pki, asgi, code, RECENT, {"from": "2019-01-01", "to": "2021-07-31"})).subscription
    assert before is not None and before.months == [] and before.since == dt.date(2021, 8, 1)


def test_the_contract_bounds_the_series_by_the_longest_period_a_caller_may_ask() -> None:
    schema = etree.parse(str(EHIS_XSD))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    (monthly,) = schema.xpath("//xs:complexType[@name='UtilitySubscription']//xs:element[@name='monthly']",
                              namespaces=ns)
    starts = [dt.date(2019, 1, 1) + dt.timedelta(days=n) for n in range(4 * 366)]
    most = max(len(months(day, day + dt.timedelta(days=MAX_PERIOD_DAYS))) for day in starts)
    assert int(monthly.get("maxOccurs")) == most


@each_utility
async def test_the_longest_period_is_answered_within_the_contract(pki: Pki, asgi, code: str) -> None:
    first = dt.date(2019, 1, 31)
    last = first + dt.timedelta(days=MAX_PERIOD_DAYS)
    held = (await consumption(pki, asgi, code, KNOWN[code][0],
                              {"from": first.isoformat(), "to": last.isoformat()})).subscription
    assert held is not None and len(held.months) == len(months(first, last)) == 62
