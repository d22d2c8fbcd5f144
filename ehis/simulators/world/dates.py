"""Dates of the world: a fixed reference date, and small calendar helpers.

Everything is stated "as at REFERENCE_DATE" so that nobody changes as time passes; monthly series
(income, consumption) simply go on past it, since the world has no notion of "now".
"""

from __future__ import annotations

import calendar
import datetime as dt
import random

REFERENCE_DATE = dt.date(2025, 1, 1)
DAY = dt.timedelta(days=1)


def add_years(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` later (1 March for 29 February in a common year, so that
    `age_on(birth, add_years(birth, n)) == n` always holds)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return dt.date(day.year + years, 3, 1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clipped to the month's last day."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def date_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    """A uniformly drawn day in [first, last] (both included)."""
    return dt.date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years of age on `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def months(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of the months from `first`'s month to `last`'s month (days are ignored)."""
    out: list[dt.date] = []
    current = month_start(first)
    end = month_start(last)
    while current <= end:
        out.append(current)
        current = add_months(current, 1)
    return out


def overlap_days(start: dt.date, end: dt.date | None, first: dt.date, last: dt.date) -> int:
    """Days of [start, end] (end None = open) that fall in [first, last]."""
    lo = max(start, first)
    hi = last if end is None else min(end, last)
    return max(0, (hi - lo).days + 1)
