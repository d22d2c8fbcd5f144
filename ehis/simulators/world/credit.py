"""Loans as the credit bureaus report them (kb.credit-report), one answer per bureau.

Rule: 45 % of people aged 20+ at REFERENCE_DATE have 1-4 loans, taken from their 20th birthday
on in the eight years before REFERENCE_DATE (none taken after a death). Each loan is reported to
one or more of the bureaus in BUREAUS ("mkr" gets 80 % of loans, "akb" 70 %, "fkb" 40 %; at least
one); the loan id is the same at every bureau, so a merger can deduplicate. Status at
REFERENCE_DATE: closed (term over, outstanding 0), overdue (10 % of running loans: three payments
missed, which stay outstanding) or active. Amounts are annuities at 12-28 % a year.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from .dates import REFERENCE_DATE, add_months, add_years, date_between
from .ids import rng, seed

if TYPE_CHECKING:
    from .core import Core

BUREAUS = ("akb", "mkr", "fkb")
ACTIVE, CLOSED, OVERDUE = "active", "closed", "overdue"
_BUREAU_SHARE = {"mkr": 0.8, "akb": 0.7, "fkb": 0.4}
LENDERS = ("Kapital Bank", "PAŞA Bank", "ABB", "Bank Respublika", "Unibank", "Xalq Bank",
           "AccessBank", "Yelo Bank", "Rabitəbank", "TuranBank", "FinKredit BOKT", "Vətən Kredit BOKT")
_KINDS = (("consumer", 300, 15_000, 6, 60, 80), ("car", 8_000, 40_000, 24, 60, 12),
          ("mortgage", 20_000, 150_000, 120, 300, 8))
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Loan:
    id: str
    lender: str
    kind: str  # consumer | car | mortgage
    start: dt.date
    end: dt.date
    amount: Decimal
    outstanding: Decimal
    monthly_payment: Decimal
    status: str  # active | closed | overdue
    bureaus: tuple[str, ...]


def loans(core: Core, fin: str, bureau: str) -> tuple[Loan, ...]:
    """The person's loans as `bureau` reports them; () for no record."""
    if bureau not in BUREAUS:
        raise ValueError(f"unknown credit bureau {bureau!r}; one of {', '.join(BUREAUS)}")
    found = core.member(fin)
    if found is None:
        return ()
    death = core.death_date(found[1].fin)
    return tuple(x for x in _loans(core, found[0].number, found[1].slot)
                 if bureau in x.bureaus and (death is None or x.start < death))


@lru_cache(maxsize=1 << 14)
def _loans(core: Core, number: int, slot: int) -> tuple[Loan, ...]:
    m = core.unit(number).member(slot)
    assert m is not None
    r = rng(core.salt, "loans", number, slot)
    if m.age < 20 or r.random() >= 0.45:
        return ()
    lo = max(add_years(m.birth, 20), add_years(REFERENCE_DATE, -8))
    hi = m.death or REFERENCE_DATE - dt.timedelta(days=30)
    out = []
    for index in range(r.choice((1, 1, 1, 2, 2, 3, 4))):
        if lo >= hi:
            break
        kind, least, most, short, long, _ = r.choices(_KINDS, weights=[k[5] for k in _KINDS])[0]
        start = date_between(r, lo, hi)
        term = r.randint(short, long)
        amount = Decimal(r.randint(least // 100, most // 100) * 100)
        rate = Decimal(str(r.uniform(0.12, 0.28))) / 12
        payment = (amount * rate / (1 - (1 + rate) ** -term)).quantize(_CENT)
        paid = _months_between(start, REFERENCE_DATE)
        end = add_months(start, term)
        status = CLOSED if paid >= term else OVERDUE if r.random() < 0.10 else ACTIVE
        if status == CLOSED:
            outstanding = Decimal(0).quantize(_CENT)
        else:
            made = max(0, paid - 3) if status == OVERDUE else paid
            left = amount * (1 + rate) ** made - payment * (((1 + rate) ** made - 1) / rate)
            outstanding = max(left, Decimal(0)).quantize(_CENT)
        bureaus = tuple(b for b in BUREAUS if r.random() < _BUREAU_SHARE[b]) or (r.choice(BUREAUS),)
        loan_id = f"L{seed(core.salt, 'loan', number, slot, index) % 16**12:012X}"
        out.append(Loan(loan_id, r.choice(LENDERS), kind, start, end, amount, outstanding, payment, status,
                        bureaus))
    return tuple(sorted(out, key=lambda x: x.start))


def _months_between(start: dt.date, day: dt.date) -> int:
    return max(0, (day.year - start.year) * 12 + day.month - start.month - (day.day < start.day))
