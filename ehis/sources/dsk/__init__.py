"""The State Statistics Committee (DSK): subsistence minimum and average wage.

Statistics have no data subject (`subject=None`, `answer_subject=None`): the exchange log
records no one for them. Published figures do not change within a day, so they are cached a day.
"""

from ehis.sources.dsk.models import (
    AverageWage,
    AverageWageQuery,
    SubsistenceMinimum,
    SubsistenceMinimumQuery,
    subsistence_request,
)
from ehis.sources.spec import DAY, Service, Source

SOURCE = Source.of(__file__, services=(
        Service("dsk.subsistence-minimum", "GetSubsistenceMinimum", params=SubsistenceMinimumQuery,
                model=SubsistenceMinimum, mapper=SubsistenceMinimum.from_contract, cache_ttl=DAY,
                subject=None, answer_subject=None, request=subsistence_request,
                example={"year": 2024, "group": "pensioner"}, missing={"year": 1995, "group": "total"}),
        Service("dsk.average-wage", "GetAverageWage", params=AverageWageQuery, model=AverageWage,
                mapper=AverageWage.from_contract, cache_ttl=DAY, subject=None, answer_subject=None,
                example={"year": 2024, "month": 6}, missing={"year": 1995, "month": 6}),
    ),
)
