"""The Ministry of Education as the simulators play it: enrolment in the synthetic world.

School from the age of 6 for those born 1988 or later, higher education at 17+, nothing begun
after a death (ehis.simulators.world.education). Someone never enrolled answers no enrolment;
a FIN starting with 0 is the NotFound fault, a malformed one InvalidInput.
"""

from __future__ import annotations

from typing import Any

from ehis.simulators.responders import Operation, Responder, fin_of, not_found
from ehis.simulators.world import Enrolment, world


def _entry(e: Enrolment) -> dict[str, Any]:
    return {"institution": e.institution, "level": e.level.upper(), "fullTime": e.full_time, "from": e.start,
            "expectedEnd": e.expected_end, "speciality": e.speciality}


def _known(fin: str) -> str:
    """The FIN of someone the register knows: a learner without enrolment is an answer, nobody is a fault."""
    if world().person(fin) is None:
        raise not_found(fin, "no person with this FIN is known to the register of learners")
    return fin


def get_enrolment(request: dict[str, Any]) -> dict[str, Any]:
    """Past enrolments too: a programme that ended (or was left) stays on the register."""
    learner = _known(fin_of(request))
    return {"fin": learner, "enrolment": [_entry(e) for e in world().enrolment(learner)]}


RESPONDER = Responder((Operation("GetEnrolment", get_enrolment),))
