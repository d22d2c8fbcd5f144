"""The canonical land plot: only the Ministry of Agriculture returns it, so it lives here."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from ehis.mapping.models import Canonical

LandUse = Literal["arable", "orchard", "pasture", "hayfield", "household_plot"]


class LandPlot(Canonical):
    district_code: str  # ISO 3166-2:AZ, as in the person's registered address
    district: str
    area_ha: Decimal
    use: LandUse
    share: Fraction  # exact (JSON "1/2"): the contract's numerator/denominator
    registry_number: str
    registered_on: date


class LandPlots(Canonical):
    """The person's plots (an empty list: they hold none)."""

    fin: str
    plots: list[LandPlot]

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> LandPlots:
        plots = []
        for plot in body["plot"]:
            held = Fraction(plot["share"]["numerator"], plot["share"]["denominator"])
            plots.append(LandPlot(district_code=plot["districtCode"], district=plot["districtName"],
                                  area_ha=plot["areaHa"], use=plot["use"].lower(), share=held,
                                  registry_number=plot["registryNumber"], registered_on=plot["registrationDate"]))
        return cls(fin=body["fin"], plots=plots)
