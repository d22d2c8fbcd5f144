"""The State Committee for Refugees and IDPs (QMKDK): refugee and IDP status.

Cached a day: a status changes seldom, and a change arrives as the `qmkdk.status-changed`
event, which a caller that must act at once listens to. A person without a status is an answer
(status "none"), not NotFound, so the means test and social payments can tell it from a FIN
nobody holds.
"""

from ehis.mapping.queries import FinQuery
from ehis.sources.qmkdk.models import IdpStatus, status_event
from ehis.sources.spec import DAY, EventFeed, EventKind, Service, Source

SOURCE = Source.of(__file__, services=(
        Service("qmkdk.idp-status", "GetIdpStatus", params=FinQuery, model=IdpStatus, cache_ttl=DAY,
                mapper=IdpStatus.from_contract, answer_subject=("fin",),
                example={"fin": "N1V96RR"}, missing={"fin": "0QK4DP2"}),
    ),
    events=EventFeed("poll", (
        EventKind("status-changed", IdpStatus, status_event, invalidates=("qmkdk.idp-status",)),
    )),
)
