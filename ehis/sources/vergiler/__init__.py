"""The tax authority (Vergilər Nazirliyi): the taxpayer register."""

from ehis.mapping.queries import VoenQuery
from ehis.sources.spec import HOUR, Service, Source, contract
from ehis.sources.vergiler.models import Taxpayer

SOURCE = Source(
    code="vergiler",
    wsdl=contract(__file__, "vergiler.wsdl"),
    services=(
        Service("vergiler.taxpayer", "GetTaxpayer", params=VoenQuery, model=Taxpayer, cache_ttl=HOUR,
                mapper=lambda body: Taxpayer.from_contract(body["taxpayer"]), subject="voen",
                answer_subject=("taxpayer", "voen"), example={"voen": "1402345671"}, missing={"voen": "0123456781"}),
    ),
)
