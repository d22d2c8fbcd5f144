"""Local executive authorities (yerli icra hakimiyyəti orqanları): one per city or district, one
contract; a household certificate is asked of the authority of the person's registered district."""

from ehis.errors import SourceFault
from ehis.mapping.queries import FinQuery
from ehis.routing import by_district
from ehis.sources.spec import HOUR, Service, Source
from ehis.sources.yih.models import Household

# The simulated world's authorities: three with districts of their own, and one for the rest.
AUTHORITIES = {
    "yih-ba": {"districts": ["AZ-BA"]},
    "yih-ga": {"districts": ["AZ-GA"]},
    "yih-sm": {"districts": ["AZ-SM"]},
    "yih-regions": {},
}

SOURCE = Source.of(
    __file__,
    providers=AUTHORITIES,
    default_provider="yih-regions",
    faults={"{urn:az:gov:yih:v1}OutOfDistrict": SourceFault},
    services=(
        Service("yih.household", "GetHousehold", params=FinQuery, model=Household, cache_ttl=HOUR,
                mapper=lambda body: Household.from_contract(body), answer_subject=("fin",), handler=by_district(),
                example={"fin": "4WQE8ZX"}, missing={"fin": "0AB12CD"}),
    ),
)
