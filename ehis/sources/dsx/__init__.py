"""The State Border Service (Dövlət Sərhəd Xidməti): border crossings and days abroad."""

from ehis.mapping.queries import FinPeriodQuery
from ehis.sources.dsx.models import BorderCrossings
from ehis.sources.spec import HOUR, Service, Source

YEAR_2024 = {"from": "2024-01-01", "to": "2024-12-31"}

SOURCE = Source.of(__file__, services=(
        Service(
            name="dsx.border-crossings", operation="GetBorderCrossings", params=FinPeriodQuery,
            model=BorderCrossings, mapper=BorderCrossings.from_contract, cache_ttl=HOUR, answer_subject=("fin",),
            example={"fin": "PPQ0H4C", **YEAR_2024},  # two trips in 2024, 42 days abroad
            missing={"fin": "0BQ8XZ3", **YEAR_2024},
        ),
    ),
)
