"""Internal Affairs (DİN): the person registry."""

from ehis.mapping.models import Person
from ehis.mapping.queries import FinQuery
from ehis.sources.spec import MINUTE, Service, Source, contract

SOURCE = Source(
    code="din",
    wsdl=contract(__file__, "din.wsdl"),
    services=(
        Service("din.person", "GetPerson", params=FinQuery, model=Person, cache_ttl=5 * MINUTE,
                mapper=lambda body: Person.from_contract(body["person"]), answer_subject=("person", "fin"),
                example={"fin": "5GXM4DZ"}, missing={"fin": "0AB12CD"}),
    ),
)
