"""The Ministry of Transport, Communications and High Technologies (NRYTN): mobile numbers.

Cached an hour: numbers change rarely, and the call centre asks about the same caller often.
"""

from ehis.mapping.queries import FinQuery
from ehis.sources.nrytn.models import MobileNumbers
from ehis.sources.spec import HOUR, Service, Source

SOURCE = Source.of(__file__, services=(
        Service("nrytn.mobile-numbers", "GetMobileNumbers", params=FinQuery, model=MobileNumbers,
                mapper=MobileNumbers.from_contract, cache_ttl=HOUR, answer_subject=("fin",),
                example={"fin": "P49HH90"}, missing={"fin": "0MB7QX3"}),
    ),
)
