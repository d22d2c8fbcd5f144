"""What the three utilities' source packages share (azerishiq, azersu, azeriqaz).

They answer one shape: a person and a period -> the subscription the person holds, if any, with
its monthly consumption and debt (ehis:UtilitySubscription, ehis.mapping.models.UtilityConsumption).
So the service is declared once here and each package names only what is its own: its code,
its operation and an example subscriber. Not a package, so the registry does not take it for a
source.
"""

from __future__ import annotations

from ehis.mapping.models import UtilityConsumption
from ehis.mapping.queries import FinPeriodQuery
from ehis.sources.spec import HOUR, Service, Source

EXAMPLE_PERIOD = {"from": "2024-01-01", "to": "2024-12-31"}  # within every example's subscription
NOBODY = "0AB12CD"  # a well-formed FIN no registry holds


def consumption_source(package_file: str, code: str, operation: str, example_fin: str) -> Source:
    """The utility `code`, whose contract `<code>.wsdl` sits next to `package_file`.

    `example_fin` must head a household with this utility's subscription since before
    EXAMPLE_PERIOD (the contract tests ask for it and expect months).
    """
    service = Service(f"{code}.consumption", operation, params=FinPeriodQuery, model=UtilityConsumption,
                      mapper=UtilityConsumption.from_contract, cache_ttl=HOUR, answer_subject=("fin",),
                      example={"fin": example_fin, **EXAMPLE_PERIOD}, missing={"fin": NOBODY, **EXAMPLE_PERIOD})
    return Source.of(package_file, services=(service,))
