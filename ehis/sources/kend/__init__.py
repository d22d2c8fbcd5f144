"""The Ministry of Agriculture (Kənd Təsərrüfatı Nazirliyi): agricultural land plots."""

from ehis.mapping.queries import FinQuery
from ehis.sources.kend.models import LandPlots
from ehis.sources.spec import DAY, Service, Source

SOURCE = Source.of(__file__, services=(
        Service("kend.land-plots", "GetLandPlots", params=FinQuery, model=LandPlots,
                mapper=LandPlots.from_contract, cache_ttl=DAY, answer_subject=("fin",),
                example={"fin": "UWQHQLV"},  # a married man in Şəmkir: three plots held 1/2 with his wife
                missing={"fin": "0KND5T1"}),
    ),
)
