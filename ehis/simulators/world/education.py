"""Education (tehsil.enrolment) and the State Examination Centre (dim.exam-results).

Enrolment, consistent with age:
- school ("general"): everyone born in 1988 or later who lived here when they turned 6, from
  15 September of the year they turn 6 (7 if born after 15 September) for 11 years (to 30 June),
  in the district they grew up in: their parents' home's when the world links their parents (a
  unit's children in the family home's, grown-up ones who moved away included; the man in his
  parents' home's), everyone else in their own home's; a vocational school likewise;
- higher education: those `studying` at REFERENCE_DATE (unit children and singles aged 18-22;
  they share their parents' home) are in a current full-time bachelor's programme that began in
  2021-2024, at 17+; 35 % of other citizens aged 22+ (born 1955 or later) did a past bachelor's
  (85 % full-time), a quarter of those born 1980+ also a master's; 10 % of the rest a vocational
  programme (2 years after school).
Exam results: an entrance exam (and admission: the institution and speciality of the
enrolment) for every bachelor's or master's programme that began after 2005; 15 % of citizens
born 1988+ who never studied further took the entrance exam and were not admitted. The exam is
in the summer before the programme, when the candidate is 17 or older.
No enrolment starts after a death.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from . import migration
from .dates import REFERENCE_DATE, add_years
from .households import parents_of
from .ids import rng
from .places import local_place
from .units import CHILD, FAMILY_HOME, MAN, PARENTS_HOME

if TYPE_CHECKING:
    from .core import Core
    from .units import Member, Unit

GENERAL, VOCATIONAL, BACHELOR, MASTER = "general", "vocational", "bachelor", "master"
UNIVERSITIES = (
    "Bakı Dövlət Universiteti", "Azərbaycan Dövlət Neft və Sənaye Universiteti",
    "Azərbaycan Dövlət İqtisad Universiteti", "Azərbaycan Tibb Universiteti", "ADA Universiteti",
    "Azərbaycan Texniki Universiteti", "Azərbaycan Dövlət Pedaqoji Universiteti",
    "Bakı Mühəndislik Universiteti", "Gəncə Dövlət Universiteti", "Sumqayıt Dövlət Universiteti",
    "Azərbaycan Memarlıq və İnşaat Universiteti", "Xəzər Universiteti",
)
SPECIALITIES = ("Kompüter elmləri", "Hüquqşünaslıq", "Maliyyə", "Müəllimlik", "Mühəndislik", "Tibb",
                "İqtisadiyyat", "Beynəlxalq münasibətlər", "Filologiya", "Memarlıq", "Kimya mühəndisliyi")
ENTRANCE_EXAM, MASTER_EXAM = "Bakalavriat qəbul imtahanı", "Magistratura qəbul imtahanı"
EXAMS_FROM_YEAR = 2006


@dataclass(frozen=True)
class Enrolment:
    institution: str
    level: str  # general | vocational | bachelor | master
    full_time: bool
    start: dt.date
    expected_end: dt.date
    speciality: str | None = None


@dataclass(frozen=True)
class Admission:
    institution: str
    speciality: str


@dataclass(frozen=True)
class ExamResult:
    exam: str
    year: int
    score: int
    admission: Admission | None  # None: not admitted


def enrolment(core: Core, fin: str) -> tuple[Enrolment, ...]:
    """Current and past enrolments, oldest first; () for no record."""
    found = core.member(fin)
    if found is None:
        return ()
    death = core.death_date(found[1].fin)
    plan = _plan(core, found[0].number, found[1].slot)[0]
    return tuple(e for e in plan if death is None or e.start < death)


def exam_results(core: Core, fin: str) -> tuple[ExamResult, ...]:
    """Exams sat at the State Examination Centre, oldest first; () for no record."""
    found = core.member(fin)
    if found is None:
        return ()
    death = core.death_date(found[1].fin)
    plan = _plan(core, found[0].number, found[1].slot)[1]
    return tuple(x for x in plan if death is None or _exam_day(x) < death)


def exam_year(birth: dt.date) -> int:
    """The first summer (1 July) at which a candidate is 17."""
    year = birth.year + 17
    return year if add_years(birth, 17) <= dt.date(year, 7, 1) else year + 1


@lru_cache(maxsize=1 << 14)
def _plan(core: Core, number: int, slot: int) -> tuple[tuple[Enrolment, ...], tuple[ExamResult, ...]]:
    unit = core.unit(number)
    m = unit.member(slot)
    assert m is not None
    r = rng(core.salt, "education", number, slot)
    district = core.base_district(number, _childhood_home(unit, m))
    came = migration.arrival(core, unit, m) if m.foreign else m.birth
    out: list[Enrolment] = []
    exams: list[ExamResult] = []
    school_year = m.birth.year + (6 if (m.birth.month, m.birth.day) <= (9, 15) else 7)
    school_start = dt.date(school_year, 9, 15)
    if m.birth.year >= 1988 and school_start < REFERENCE_DATE and came <= school_start:
        number = r.randint(1, 300 if district.code == "AZ-BA" else 40)
        name = f"{local_place(district, r)} {number} nömrəli tam orta məktəb"
        out.append(Enrolment(name, GENERAL, True, school_start, dt.date(school_year + 11, 6, 30)))
    first = exam_year(m.birth)
    if m.studying:
        year = r.randint(max(first, REFERENCE_DATE.year - 4), REFERENCE_DATE.year - 1)
        _higher(r, out, exams, BACHELOR, year, 4, True)
    elif not m.foreign and m.age >= 22 and m.birth.year >= 1955 and r.random() < 0.35:
        year = min(first + r.randint(0, 1), REFERENCE_DATE.year - 5)
        _higher(r, out, exams, BACHELOR, year, 4, r.random() < 0.85)
        if m.birth.year >= 1980 and year + 6 < REFERENCE_DATE.year and r.random() < 0.25:
            _higher(r, out, exams, MASTER, year + 4, 2, True)
    elif out and r.random() < 0.10:
        start = dt.date(out[0].expected_end.year, 9, 15)
        if start < REFERENCE_DATE:
            name = f"{local_place(district, r)} {r.randint(1, 40)} nömrəli peşə məktəbi"
            out.append(Enrolment(name, VOCATIONAL, True, start, dt.date(start.year + 2, 6, 30)))
    elif (not m.foreign and m.birth.year >= 1988 and EXAMS_FROM_YEAR <= first < REFERENCE_DATE.year
          and r.random() < 0.15):
        exams.append(ExamResult(ENTRANCE_EXAM, first, r.randint(40, 250), None))
    if m.death is not None:  # nothing begins after a death in the base world either
        out = [e for e in out if e.start < m.death]
        exams = [x for x in exams if _exam_day(x) < m.death]
    return tuple(out), tuple(exams)


def _childhood_home(unit: Unit, m: Member) -> str:
    """The home someone went to school from: their parents', where the world knows them."""
    if m.role == CHILD:
        return FAMILY_HOME
    if m.role == MAN and any(parent is not None for parent in parents_of(unit, m)):
        return PARENTS_HOME
    return m.home


def _exam_day(result: ExamResult) -> dt.date:
    """Entrance exams are sat in the summer before the programme (counted as 1 July)."""
    return dt.date(result.year, 7, 1)


def _higher(r: random.Random, out: list[Enrolment], exams: list[ExamResult], level: str, year: int,
            years: int, full_time: bool) -> None:
    institution, speciality = r.choice(UNIVERSITIES), r.choice(SPECIALITIES)
    out.append(Enrolment(institution, level, full_time, dt.date(year, 9, 15), dt.date(year + years, 6, 30),
                         speciality))
    if year >= EXAMS_FROM_YEAR:
        score = r.randint(250, 700) if level == BACHELOR else r.randint(30, 100)
        exams.append(ExamResult(ENTRANCE_EXAM if level == BACHELOR else MASTER_EXAM, year, score,
                                Admission(institution, speciality)))


def current_enrolment(core: Core, fin: str) -> Enrolment | None:
    """The full-time higher education running at REFERENCE_DATE, if any (conscription uses it)."""
    for e in enrolment(core, fin):
        if e.level in (BACHELOR, MASTER) and e.full_time and e.start <= REFERENCE_DATE <= e.expected_end:
            return e
    return None


def finished_higher(core: Core, unit: Unit, m: Member) -> dt.date | None:
    """When the person's (last) higher education ended, if they had one before REFERENCE_DATE."""
    ends = [e.expected_end for e in _plan(core, unit.number, m.slot)[0]
            if e.level in (BACHELOR, MASTER) and e.expected_end < REFERENCE_DATE]
    return max(ends) if ends else None
