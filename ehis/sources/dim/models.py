"""The canonical exam results: only the State Examination Centre returns them, so they live here."""

from __future__ import annotations

from typing import Any

from ehis.mapping.models import Canonical


class Admission(Canonical):
    institution: str
    speciality: str


class ExamResult(Canonical):
    exam: str
    year: int
    score: int  # on the exam's own scale (entrance to a bachelor's: up to 700; to a master's: 100)
    admission: Admission | None = None  # None: not admitted

    @classmethod
    def from_contract(cls, r: dict[str, Any]) -> ExamResult:
        admitted = r["admission"]
        return cls(exam=r["exam"], year=r["year"], score=r["score"], admission=None if admitted is None else
                   Admission(institution=admitted["institution"], speciality=admitted["speciality"]))


class ExamResults(Canonical):
    """Oldest first; an empty list: sat no exam."""

    fin: str
    results: list[ExamResult]

    @classmethod
    def from_contract(cls, body: dict[str, Any]) -> ExamResults:
        return cls(fin=body["fin"], results=[ExamResult.from_contract(r) for r in body["result"]])
