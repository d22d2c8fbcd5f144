"""The statistics' parameters and canonical answers: only the statistics committee has them.

Statistics name no person, so the params carry no identifier; they are bounded so that a
caller's typo (a two-digit year, month 13) is refused by the hub before any source is asked.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from ehis.mapping.models import Canonical, Money
from ehis.mapping.queries import Query

FIRST_YEAR, LAST_YEAR = 1991, 2099  # the committee's series start with independence
Year = Annotated[int, Field(ge=FIRST_YEAR, le=LAST_YEAR)]


class PopulationGroup(StrEnum):
    """The groups the subsistence minimum is set for (the contract spells them in capitals)."""

    TOTAL = "total"
    WORKING_AGE = "working_age"
    PENSIONER = "pensioner"
    CHILD = "child"


class SubsistenceMinimumQuery(Query):
    year: Year
    group: PopulationGroup = PopulationGroup.TOTAL


class AverageWageQuery(Query):
    year: Year
    month: int = Field(ge=1, le=12)


def subsistence_request(params: BaseModel) -> dict[str, Any]:
    """The request payload: the group as the contract's code."""
    assert isinstance(params, SubsistenceMinimumQuery)
    return {"year": params.year, "group": params.group.name}


class SubsistenceMinimum(Canonical):
    year: int
    group: PopulationGroup
    amount: Money  # manat a month

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> SubsistenceMinimum:
        return cls(year=body["year"], group=PopulationGroup[body["group"]], amount=body["amount"])


class AverageWage(Canonical):
    year: int
    month: int
    amount: Money  # nominal, manat

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> AverageWage:
        return cls(year=body["year"], month=body["month"], amount=body["amount"])
