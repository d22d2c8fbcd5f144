"""The `World` facade: one method per facet, the overlay mutations, and the default world.

Per-person facets return None (single records) or () (lists) when there is no record, which
includes FINs nobody holds; a malformed FIN raises ValueError everywhere.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache

from . import (
    assets,
    border,
    civil,
    contacts,
    credit,
    education,
    health,
    households,
    idp,
    migration,
    military,
    statistics,
    taxpayers,
    utilities,
    work,
)
from .core import Core
from .dates import DAY, REFERENCE_DATE, add_years
from .ids import rng
from .overlay import IdpChange
from .places import DISTRICTS_BY_CODE, Address, address, authority_of
from .units import Member, Unit


class World(Core):
    """A seeded, deterministic, linked synthetic world (rules: the package docstring)."""

    # people and families -------------------------------------------------------------------
    def family(self, fin: str) -> households.Family | None:
        return households.family(self, fin)

    def household(self, fin: str) -> households.Household | None:
        return households.household(self, fin)

    def unit_fins(self, fin: str) -> tuple[str, ...]:
        """The held FINs of the person's unit (related or not), by slot."""
        found = self.member(fin)
        return () if found is None else tuple(m.fin for m in found[0].members)

    def authority(self, fin: str) -> str | None:
        """The local executive authority (yih-…) of the person's registered district."""
        person = self.person(fin)
        return None if person is None else authority_of(person.address.district_code)

    def civil_acts(self, fin: str) -> civil.CivilActs | None:
        return civil.civil_acts(self, fin)

    # work and money ------------------------------------------------------------------------
    def employment(self, fin: str) -> tuple[work.Job, ...]:
        return work.employment(self, fin)

    def income(self, fin: str, first_month: dt.date, last_month: dt.date) -> tuple[work.IncomeMonth, ...]:
        return work.income(self, fin, first_month, last_month)

    def taxpayer(self, voen: str) -> taxpayers.Taxpayer | None:
        return taxpayers.taxpayer(self, voen)

    def voen_of_entrepreneur(self, fin: str) -> str | None:
        return taxpayers.voen_of_entrepreneur(self, fin)

    def employer_voen(self, k: int) -> str:
        return taxpayers.employer_voen(self, k)

    def loans(self, fin: str, bureau: str) -> tuple[credit.Loan, ...]:
        return credit.loans(self, fin, bureau)

    # property --------------------------------------------------------------------------------
    def vehicles(self, fin: str) -> tuple[assets.Vehicle, ...]:
        return assets.vehicles(self, fin)

    def real_estate(self, fin: str) -> tuple[assets.Property, ...]:
        return assets.real_estate(self, fin)

    def land_plots(self, fin: str) -> tuple[assets.LandPlot, ...]:
        return assets.land_plots(self, fin)

    def utilities(self, fin: str, kind: str) -> utilities.Subscription | None:
        return utilities.utilities(self, fin, kind)

    def consumption(self, fin: str, kind: str, first_month: dt.date,
                    last_month: dt.date) -> utilities.Consumption | None:
        return utilities.consumption(self, fin, kind, first_month, last_month)

    # migration and borders -------------------------------------------------------------------
    def residence_permit(self, fin: str) -> migration.ResidencePermit | None:
        return migration.residence_permit(self, fin)

    def work_permits(self, fin: str) -> tuple[migration.WorkPermit, ...]:
        return migration.work_permits(self, fin)

    def border_crossings(self, fin: str, start: dt.date, end: dt.date) -> border.BorderRecord | None:
        return border.border_crossings(self, fin, start, end)

    # education, army, health, phones, IDPs ---------------------------------------------------
    def enrolment(self, fin: str) -> tuple[education.Enrolment, ...]:
        return education.enrolment(self, fin)

    def exam_results(self, fin: str) -> tuple[education.ExamResult, ...]:
        return education.exam_results(self, fin)

    def conscription(self, fin: str) -> military.Conscription | None:
        return military.conscription(self, fin)

    def service_record(self, fin: str) -> military.ServiceRecord | None:
        return military.service_record(self, fin)

    def referrals(self, fin: str) -> tuple[health.Referral, ...]:
        return health.referrals(self, fin)

    def mobile_numbers(self, fin: str) -> tuple[contacts.MobileNumber, ...]:
        return contacts.mobile_numbers(self, fin)

    def idp_status(self, fin: str) -> idp.IdpStatus | None:
        return idp.idp_status(self, fin)

    # statistics (no subject) -----------------------------------------------------------------
    def subsistence_minimum(self, year: int, group: str = "total") -> Decimal | None:
        return statistics.subsistence_minimum(year, group)

    def average_wage(self, year: int, month: int) -> Decimal | None:
        return statistics.average_wage(year, month)

    # overlay: events -------------------------------------------------------------------------
    def register_death(self, fin: str, day: dt.date) -> civil.CivilAct:
        """Record a death: every facet reflects it from now on; returns the new death act.

        ValueError for nobody, for the already deceased, or for a day before the birth.
        """
        with self.overlay.lock:  # check and record at once: one death per person
            found = self._living_member(fin)
            if day < found[1].birth:
                raise ValueError("a death before the birth")
            self.overlay.record_death(found[1].fin, day)
        acts = self.civil_acts(fin)
        assert acts is not None and acts.death is not None
        return acts.death

    def change_address(self, fin: str, district_code: str) -> Address:
        """Move the person's whole household to a new address in `district_code`."""
        unit, m = self._living_member(fin)
        district = DISTRICTS_BY_CODE.get(district_code)
        if district is None:
            raise ValueError(f"unknown district code {district_code!r}")
        home_id = self.household_id(unit.number, m.home)
        with self.overlay.lock:
            moves = self.overlay.moves.get(home_id, 0)
            new = address(rng(self.salt, "move", home_id, district_code, moves), district)
            self.overlay.record_move(home_id, new)
        return new

    def change_idp_status(self, fin: str, status: str | None, region: str | None = None,
                          since: dt.date | None = None) -> idp.IdpStatus | None:
        """Set ("idp"/"refugee", with a region) or withdraw (None) the status of the kin group.

        `since` is the event's date; it defaults to REFERENCE_DATE (the world reads no clock).
        """
        unit, m = self._living_member(fin)
        if m.foreign:
            raise ValueError("foreigners hold no refugee or IDP status")
        if status is not None and (status not in (idp.IDP, idp.REFUGEE) or not region):
            raise ValueError("status is 'idp' or 'refugee' with a region of origin, or None")
        change = IdpChange(status, region if status else None, since or REFERENCE_DATE)
        self.overlay.record_idp(idp.kin_id(unit, m), change)
        return self.idp_status(fin)

    def issue_permit(self, fin: str, kind: str, start: dt.date, end: dt.date | None = None, *,
                     employer_voen: str | None = None, position: str | None = None,
                     permanent: bool = False) -> migration.ResidencePermit | migration.WorkPermit:
        """Issue a residence ("residence") or work ("work") permit to a living foreigner."""
        _, m = self._living_member(fin)
        if not m.foreign:
            raise ValueError("only foreign citizens get permits")
        if end is not None and end < start:
            raise ValueError("a permit ends before it starts")
        with self.overlay.lock:
            permit = self._permit(m, kind, start, end, employer_voen, position, permanent)
            self.overlay.record_permit(m.fin, permit)
        return permit

    def _permit(self, m: Member, kind: str, start: dt.date, end: dt.date | None, employer_voen: str | None,
                position: str | None, permanent: bool) -> migration.ResidencePermit | migration.WorkPermit:
        count = len(self.overlay.permits.get(m.fin, ()))
        number = migration.new_permit_number(self.salt, m.fin, kind, count, start)
        if kind == "residence":
            stop = end or add_years(start, 5 if permanent else 1) - DAY
            permit: migration.ResidencePermit | migration.WorkPermit = migration.ResidencePermit(
                migration.PERMIT_SERIES, number, migration.PERMANENT if permanent else migration.TEMPORARY,
                start, stop)
        elif kind == "work":
            employer = self.taxpayer(employer_voen) if employer_voen else None
            if employer is None or employer.kind != taxpayers.LEGAL_ENTITY:
                raise ValueError("a work permit names the VÖEN of an existing legal entity")
            permit = migration.WorkPermit(number, employer.voen, position or "işçi", start,
                                          end or add_years(start, 1) - DAY)
        else:
            raise ValueError("kind is 'residence' or 'work'")
        return permit

    def reset_overlay(self) -> None:
        """Forget every registered event: back to the base world."""
        self.overlay.reset()

    def _living_member(self, fin: str) -> tuple[Unit, Member]:
        found = self.member(fin)
        if found is None:
            raise ValueError("no person with this FIN")
        if not self.living(found[1]):
            raise ValueError("the person is deceased")
        return found


@lru_cache(maxsize=1)
def world() -> World:
    """The default world (salt DEFAULT_SALT), shared by the simulators."""
    return World()
