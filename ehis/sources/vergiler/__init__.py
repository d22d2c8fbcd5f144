"""The tax authority (Vergilər Nazirliyi): the taxpayer register and declared income."""

from ehis.mapping.queries import FinPeriodQuery, VoenQuery
from ehis.sources.spec import HOUR, Service, Source
from ehis.sources.vergiler.models import Income, Taxpayer

SOURCE = Source.of(__file__, services=(
        Service("vergiler.taxpayer", "GetTaxpayer", params=VoenQuery, model=Taxpayer, cache_ttl=HOUR,
                mapper=lambda body: Taxpayer.from_contract(body["taxpayer"]), subject="voen",
                answer_subject=("taxpayer", "voen"), example={"voen": "1402345671"}, missing={"voen": "0123456781"}),
        # 3NFJQ8B had two employers in 2024
        Service("vergiler.income", "GetIncome", params=FinPeriodQuery, model=Income, cache_ttl=HOUR,
                mapper=Income.from_contract, answer_subject=("fin",),
                example={"fin": "3NFJQ8B", "from": "2024-01-01", "to": "2024-12-31"},
                missing={"fin": "0RV5T2M", "from": "2024-01-01", "to": "2024-12-31"}),
    ),
)
