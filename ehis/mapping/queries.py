"""Request parameter models several services share (what a caller sends in `params`).

Identifiers are validated types (ehis.identifiers); a period is bounded so a caller cannot ask a
source for a century of records. Field aliases are the contract's element names, which is what
`ehis.sources.spec.dump_params` sends.
"""

from __future__ import annotations

from datetime import date
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ehis.identifiers import Fin, Voen

MAX_PERIOD_DAYS = 5 * 366


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FinQuery(Query):
    fin: Fin


class VoenQuery(Query):
    voen: Voen


class FinPeriodQuery(Query):
    """A person and a period of at most five years, `start` <= `end`."""

    fin: Fin
    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start > self.end:
            raise ValueError("'from' must not be after 'to'")
        if (self.end - self.start).days > MAX_PERIOD_DAYS:
            raise ValueError(f"the period may span at most {MAX_PERIOD_DAYS} days")
        return self
