"""The State Service for Mobilization and Conscription (SHXÇDX): the conscription register."""

from ehis.mapping.queries import FinQuery
from ehis.sources.spec import DAY, Service, Source
from ehis.sources.sshcdx.models import ConscriptionStatus

_STATUS = Service(
    "sshcdx.conscription-status", "GetConscriptionStatus", params=FinQuery, model=ConscriptionStatus,
    mapper=ConscriptionStatus.from_contract, cache_ttl=DAY, answer_subject=("fin",),
    example={"fin": "PMQ9NG6"},  # a man deferred for family reasons until November 2025
    missing={"fin": "0SX2W9P"},
)

SOURCE = Source.of(__file__, services=(_STATUS,))
