"""The Ministry of Justice (Ədliyyə Nazirliyi): the civil status registry."""

from ehis.mapping.queries import FinQuery
from ehis.sources.edliyye.models import (
    BirthAct,
    CivilActs,
    Death,
    MarriageAct,
    birth_event,
    death_event,
    union_event,
)
from ehis.sources.spec import HOUR, EventFeed, EventKind, Service, Source

# WNL4EQT: a married-then-divorced citizen with children; any FIN starting with 0 is held by nobody
SOURCE = Source.of(__file__, services=(
        Service("edliyye.civil-acts", "GetCivilActs", params=FinQuery, model=CivilActs, cache_ttl=HOUR,
                mapper=CivilActs.from_contract, answer_subject=("fin",),
                example={"fin": "WNL4EQT"}, missing={"fin": "0KD73QA"}),
    ),
    events=EventFeed("push", (
        EventKind("birth", BirthAct, birth_event, invalidates=("edliyye.civil-acts",)),
        EventKind("death", Death, death_event, invalidates=("edliyye.civil-acts", "din.person")),
        EventKind("marriage", MarriageAct, union_event, invalidates=("edliyye.civil-acts",)),
        EventKind("divorce", MarriageAct, union_event, invalidates=("edliyye.civil-acts",)),
    )),
)
