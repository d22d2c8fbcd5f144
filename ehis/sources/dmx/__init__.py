"""The State Migration Service (DMX): foreigners' residence and work permits.

Cached an hour: a permit issued now reaches the employment subsystems through the
`dmx.permit-issued` event, and an hour-old answer is fresh enough for a contract form.
A citizen (or a foreigner without a permit) gets an answer without a permit, never NotFound.
"""

from ehis.mapping.queries import FinQuery
from ehis.sources.dmx.models import PermitChange, Residence, WorkPermits
from ehis.sources.spec import HOUR, EventFeed, EventKind, Service, Source

FOREIGN_WORKER, NOBODY = {"fin": "PVEN0YR"}, {"fin": "0DM3XR7"}

SOURCE = Source.of(__file__, services=(
        Service("dmx.residence-permit", "GetResidencePermit", params=FinQuery, model=Residence, cache_ttl=HOUR,
                mapper=Residence.from_contract, answer_subject=("fin",), example=FOREIGN_WORKER, missing=NOBODY),
        Service("dmx.work-permit", "GetWorkPermits", params=FinQuery, model=WorkPermits, cache_ttl=HOUR,
                mapper=WorkPermits.from_contract, answer_subject=("fin",), example=FOREIGN_WORKER, missing=NOBODY),
    ),
    events=EventFeed("poll", tuple(
        EventKind(kind, PermitChange, PermitChange.from_event, invalidates=("dmx.residence-permit", "dmx.work-permit"))
        for kind in ("permit-issued", "permit-expiring", "permit-expired")
    )),
)
