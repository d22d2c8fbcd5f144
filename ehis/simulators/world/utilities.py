"""Utility subscriptions and consumption (azerishiq electricity, azersu water, azeriqaz gas).

Rules: a subscription is in the name of the HEAD of a household ONLY (anyone else: no record),
at the household's registered address (the very same Address, moves included). Electricity:
every household; water: 92 %; gas: 90 % of homes in cities, 75 % in districts. The subscriber
code is drawn from the kind and the address text (a household that moves gets a new one; a new
head after a death keeps it). Consumption runs monthly from the subscription's start (the
household's formation, a divorced man's own home at the divorce; not before 2010-01) for any
month asked, after REFERENCE_DATE too: kWh for electricity, m³ for water and gas, seasonal,
scaled by the household's size. The debt is the balance at REFERENCE_DATE (70 % owe nothing).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .dates import months
from .households import formed, household
from .ids import chance, normalize_fin, rng, seed
from .places import DISTRICTS_BY_CODE, Address
from .units import DIVORCED, FAMILY_HOME, MAN, Member, Unit

if TYPE_CHECKING:
    from .core import Core

ELECTRICITY, WATER, GAS = "electricity", "water", "gas"
UTILITY_KINDS = (ELECTRICITY, WATER, GAS)
UNITS_OF = {ELECTRICITY: "kWh", WATER: "m3", GAS: "m3"}
SUBSCRIPTIONS_FROM = dt.date(2010, 1, 1)
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Subscription:
    kind: str  # electricity | water | gas
    subscriber_fin: str
    subscriber_code: str
    address: Address
    since: dt.date
    debt: Decimal
    household_size: int


@dataclass(frozen=True)
class MonthlyUse:
    month: dt.date  # first day of the month
    amount: Decimal
    unit: str  # kWh | m3


@dataclass(frozen=True)
class Consumption:
    subscription: Subscription
    months: tuple[MonthlyUse, ...]


def _check(kind: str) -> None:
    if kind not in UTILITY_KINDS:
        raise ValueError(f"unknown utility {kind!r}; one of {', '.join(UTILITY_KINDS)}")


def utilities(core: Core, fin: str, kind: str) -> Subscription | None:
    """The subscription of this kind held by this person; None unless they head a household."""
    _check(kind)
    fin = normalize_fin(fin)  # as every facet takes it: " abc1234" is the head ABC1234 too
    home = household(core, fin)
    if home is None or home.head != fin:
        return None
    unit, m = core.member(fin)  # type: ignore[misc]
    covered = {ELECTRICITY: 1.0, WATER: 0.92,
               GAS: 0.90 if DISTRICTS_BY_CODE[home.address.district_code].city else 0.75}[kind]
    if chance(core.salt, "utility", home.id, kind) >= covered:
        return None
    code = f"{seed(core.salt, 'subscriber', kind, home.address.text) % 10**10:010d}"
    since = max(_formed(unit, m), SUBSCRIPTIONS_FROM).replace(day=1)
    r = rng(core.salt, "debt", kind, code)
    debt = Decimal(0) if r.random() < 0.7 else Decimal(str(round(r.uniform(2, 400), 2))).quantize(_CENT)
    return Subscription(kind, fin, code, home.address, since, debt, len(home.members))


def _formed(unit: Unit, head: Member) -> dt.date:
    """When the head's home was set up. A divorced man lived in the family home (and held its
    subscriptions) until the divorce, so his own home dates from the divorce, not from his 18th
    birthday: two subscriptions in his name would otherwise overlap for the years of the marriage."""
    if head.role == MAN and unit.couple == DIVORCED and head.home != FAMILY_HOME and unit.divorce is not None:
        return unit.divorce
    return formed(unit, head.home, head)


def consumption(core: Core, fin: str, kind: str, first: dt.date, last: dt.date) -> Consumption | None:
    """Monthly consumption of the person's subscription in [first's month, last's month]."""
    sub = utilities(core, fin, kind)
    if sub is None:
        return None
    base = _base(kind, sub.household_size) * (0.8 + 0.4 * chance(core.salt, "base-use", kind, sub.subscriber_code))
    out = []
    for month in months(max(first, sub.since), last):
        noise = 0.85 + 0.3 * chance(core.salt, "use", sub.subscriber_code, month.year, month.month)
        amount = base * _season(kind, month.month) * noise
        step = Decimal(1) if kind == ELECTRICITY else Decimal("0.1")
        out.append(MonthlyUse(month, Decimal(str(amount)).quantize(step), UNITS_OF[kind]))
    return Consumption(sub, tuple(out))


def _base(kind: str, size: int) -> float:
    return {ELECTRICITY: 90 + 55 * size, WATER: 2.5 + 3.2 * size, GAS: 60 + 25 * size}[kind]


def _season(kind: str, month: int) -> float:
    """Gas heats in winter; electricity peaks in winter and for summer air conditioning."""
    winter = math.cos((month - 1) / 12 * 2 * math.pi)  # 1 in January, -1 in July
    if kind == GAS:
        return 1.0 + 0.9 * winter
    if kind == ELECTRICITY:
        return 1.0 + 0.25 * abs(winter)
    return 1.0 - 0.1 * winter
