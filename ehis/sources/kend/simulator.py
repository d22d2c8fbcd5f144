"""The Ministry of Agriculture as the simulators play it: land plots of the synthetic world.

Plots lie in the holder's home district (rayon), or in some rural district for a city dweller,
held in the same shares as the home (ehis.simulators.world.assets). A held FIN with no plot
answers none; a FIN starting with 0 is the NotFound fault, a malformed one InvalidInput.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, fin_of, not_found
from ehis.simulators.world import LandPlot, world


def _plot(p: LandPlot) -> dict[str, Any]:
    numerator, denominator = p.share.as_integer_ratio()
    return {"districtCode": p.district_code, "districtName": p.district_name, "areaHa": p.area_ha,
            "use": p.use.upper(), "share": {"numerator": numerator, "denominator": denominator},
            "registryNumber": p.registry_number, "registrationDate": p.registration_date}


def get_land_plots(request: dict[str, Any]) -> dict[str, Any]:
    holder = fin_of(request)
    plots = world().land_plots(holder)
    if not plots and world().person(holder) is None:
        raise not_found(holder, "no person with this FIN in the land register")
    return {"fin": holder, "plot": list(map(_plot, plots))}


RESPONDER = Responder((Operation("GetLandPlots", get_land_plots),))
