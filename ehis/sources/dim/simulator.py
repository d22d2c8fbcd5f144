"""The State Examination Centre as the simulators play it: exams of the synthetic world.

An entrance exam precedes every bachelor's or master's programme begun after 2005 (the admission
names its institution and speciality), sat at 17 or older; some candidates were not admitted.
A person who sat none answers no result; a FIN starting with 0 is the NotFound fault, a
malformed one InvalidInput.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, fin_of, not_found
from ehis.simulators.world import ExamResult, world


def _result(x: ExamResult) -> dict[str, Any]:
    admitted = x.admission
    return {"exam": x.exam, "year": x.year, "score": x.score,
            "admission": None if admitted is None else {"institution": admitted.institution,
                                                        "speciality": admitted.speciality}}


def get_exam_results(request: dict[str, Any]) -> dict[str, Any]:
    """Every exam sat, admitted or not: a candidate who was not admitted still has a score."""
    candidate = fin_of(request)
    results = [_result(x) for x in world().exam_results(candidate)]
    if results or world().person(candidate) is not None:
        return {"fin": candidate, "result": results}
    raise not_found(candidate, "no candidate with this FIN at the centre")


RESPONDER = Responder((Operation("GetExamResults", get_exam_results),))
