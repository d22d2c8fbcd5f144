"""The State Committee on Property Issues (Əmlak Məsələləri Dövlət Komitəsi): registered real estate."""

from ehis.mapping.queries import FinQuery
from ehis.sources.emlak.models import RealEstate, real_estate
from ehis.sources.spec import DAY, Service, Source

SOURCE = Source.of(__file__, services=(
        # example: a married man: the couple's flat (1/2) and premises of his own (1/1)
        Service("emlak.real-estate", "GetRealEstate", params=FinQuery, model=RealEstate, cache_ttl=DAY,
                mapper=real_estate, answer_subject=("fin",), example={"fin": "4JXFKN1"},
                missing={"fin": "0EM7AK2"}),
    ),
)
