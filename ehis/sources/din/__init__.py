"""Internal Affairs (DİN): the person registry and the vehicles registered to a person."""

from ehis.mapping.models import Person
from ehis.mapping.queries import FinQuery
from ehis.sources.din.models import AddressChange, Vehicles
from ehis.sources.spec import (
    HOUR,
    MINUTE,
    EventFeed,
    EventKind,
    Service,
    Source,
)

SOURCE = Source.of(__file__, services=(
        Service("din.person", "GetPerson", params=FinQuery, model=Person, cache_ttl=5 * MINUTE,
                mapper=lambda body: Person.from_contract(body["person"]), answer_subject=("person", "fin"),
                example={"fin": "5GXM4DZ"}, missing={"fin": "0AB12CD"}),
        Service("din.vehicles", "GetVehicles", params=FinQuery, model=Vehicles, cache_ttl=HOUR,
                mapper=Vehicles.from_contract, answer_subject=("fin",),
                example={"fin": "3MDX58F"}, missing={"fin": "0VH1CL5"}),
    ),
    events=EventFeed("poll", (
        EventKind("address-changed", AddressChange, AddressChange.from_event, invalidates=("din.person",)),
    )),
)
