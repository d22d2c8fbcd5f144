"""The Ministry of Defence (Müdafiə Nazirliyi): military service records."""

from ehis.mapping.queries import FinQuery
from ehis.sources.mudafie.models import ServiceRecord
from ehis.sources.spec import DAY, Service, Source

# 23CZRHZ: a conscript of 1997-99, mobilised in the 44-day war (a combat veteran); 0… names nobody
EXAMPLE, MISSING = {"fin": "23CZRHZ"}, {"fin": "0M4TB7S"}

SOURCE = Source.of(__file__, services=(
    Service("mudafie.service-record", "GetServiceRecord", FinQuery, ServiceRecord, ServiceRecord.from_contract, DAY,
            answer_subject=("fin",), example=EXAMPLE, missing=MISSING),
))
