"""Statistics without a subject (dsk): subsistence minimum and average wage, fixed tables.

Figures are plausible manat amounts growing by year (close to the published ones, not copies of
them). Both tables run to 2026 so that a simulator running after REFERENCE_DATE still has
answers; outside the tables there is no record (None).
"""

from __future__ import annotations

from decimal import Decimal

SUBSISTENCE_GROUPS = ("total", "working_age", "pensioner", "child")
_GROUP_RATIO = {"total": Decimal(1), "working_age": Decimal("1.07"), "pensioner": Decimal("0.82"),
                "child": Decimal("0.88")}
_SUBSISTENCE_TOTAL = {
    2005: 55, 2006: 58, 2007: 68, 2008: 77, 2009: 85, 2010: 89, 2011: 97, 2012: 105, 2013: 114,
    2014: 127, 2015: 136, 2016: 139, 2017: 155, 2018: 173, 2019: 180, 2020: 191, 2021: 196,
    2022: 215, 2023: 246, 2024: 265, 2025: 280, 2026: 300,
}
_AVERAGE_WAGE = {  # nominal average monthly wage of the year, manat
    2000: "44.30", 2001: "51.80", 2002: "63.10", 2003: "77.40", 2004: "99.40", 2005: "123.60",
    2006: "149.00", 2007: "215.80", 2008: "274.40", 2009: "298.00", 2010: "331.50",
    2011: "364.20", 2012: "398.40", 2013: "425.10", 2014: "444.50", 2015: "466.90",
    2016: "499.80", 2017: "528.50", 2018: "544.60", 2019: "634.10", 2020: "707.70",
    2021: "744.60", 2022: "830.20", 2023: "926.70", 2024: "999.80", 2025: "1080.00",
    2026: "1160.00",
}
# December bonuses, a slow start of the year; the factors average 1
_SEASON = (Decimal("0.95"), Decimal("0.95"), Decimal("0.98"), Decimal("0.98"), Decimal("1.00"),
           Decimal("1.02"), Decimal("1.00"), Decimal("0.98"), Decimal("0.99"), Decimal("1.00"),
           Decimal("1.02"), Decimal("1.13"))
_CENT = Decimal("0.01")
FIRST_WAGE_YEAR, LAST_TABLE_YEAR = min(_AVERAGE_WAGE), max(_AVERAGE_WAGE)
_GROWTH = Decimal("1.07")


def subsistence_minimum(year: int, group: str = "total") -> Decimal | None:
    """The subsistence minimum of a year for a population group (ValueError for an unknown group)."""
    if group not in _GROUP_RATIO:
        raise ValueError(f"unknown population group {group!r}; one of {', '.join(SUBSISTENCE_GROUPS)}")
    total = _SUBSISTENCE_TOTAL.get(year)
    if total is None:
        return None
    return (total * _GROUP_RATIO[group]).quantize(Decimal(1)).quantize(_CENT)


def average_wage(year: int, month: int) -> Decimal | None:
    """Nominal average monthly wage of a month (None outside the published table)."""
    if not 1 <= month <= 12:
        raise ValueError("month is 1..12")
    yearly = _AVERAGE_WAGE.get(year)
    if yearly is None:
        return None
    return (Decimal(yearly) * _SEASON[month - 1]).quantize(_CENT)


def wage_index(year: int, month: int) -> Decimal:
    """The average wage for salaries: the table, extrapolated at 7 % a year outside it."""
    year = max(year, FIRST_WAGE_YEAR)
    if year <= LAST_TABLE_YEAR:
        value = average_wage(year, month)
        assert value is not None
        return value
    last = average_wage(LAST_TABLE_YEAR, month)
    assert last is not None
    return (last * _GROWTH ** (year - LAST_TABLE_YEAR)).quantize(_CENT)
