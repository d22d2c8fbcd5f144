"""The Ministry of Education (Təhsil Nazirliyi): current and past enrolment."""

from typing import Any

from ehis.mapping.queries import FinQuery
from ehis.sources.spec import HOUR, Service, Source
from ehis.sources.tehsil.models import Enrolment, Enrolments


def _enrolments(body: dict[str, Any]) -> Enrolments:
    return Enrolments(fin=body["fin"], enrolments=[Enrolment.from_contract(e) for e in body["enrolment"]])


SOURCE = Source.of(__file__, services=(
        # example: school in Naftalan, then a bachelor's and a master's degree
        Service("tehsil.enrolment", "GetEnrolment", params=FinQuery, model=Enrolments, mapper=_enrolments,
                cache_ttl=HOUR, answer_subject=("fin",), example={"fin": "LPBH9R0"}, missing={"fin": "0TH5L2A"}),
    ),
)
