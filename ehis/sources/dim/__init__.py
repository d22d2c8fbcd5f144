"""The State Examination Centre (Dövlət İmtahan Mərkəzi): exams taken and the admissions they led to."""

from ehis.mapping.queries import FinQuery
from ehis.sources.dim.models import ExamResults
from ehis.sources.spec import DAY, Service, Source

EXAM_RESULTS = Service(
    "dim.exam-results", "GetExamResults", params=FinQuery, model=ExamResults, mapper=ExamResults.from_contract,
    cache_ttl=DAY, answer_subject=("fin",),
    example={"fin": "LPBH9R0"},  # admitted to a bachelor's (2018) and to a master's (2022)
    missing={"fin": "0DM1M7E"},
)

SOURCE = Source.of(__file__, services=(EXAM_RESULTS,))
