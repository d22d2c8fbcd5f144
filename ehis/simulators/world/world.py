"""The `World` facade: one method per facet, the overlay mutations, and the default world.

Per-person facets return None (single records) or () (lists) when there is no record, which
includes FINs nobody holds; a malformed FIN raises ValueError everywhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from functools import lru_cache
from types import ModuleType

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
from . import people as _people
from .core import Core
from .dates import DAY, REFERENCE_DATE, add_years, age_on
from .ids import rng
from .overlay import Change, IdpChange
from .places import DISTRICTS_BY_CODE, Address, address, authority_of
from .units import (
    CHILD,
    CHILD_SLOTS,
    DIVORCED,
    FAMILY_HOME,
    MAN,
    MARRIED,
    UNMARRIED,
    WOMAN,
    Member,
    Unit,
)

EXPIRING_NOTICE = dt.timedelta(days=30)  # a permit "about to expire" ends within this
_CACHED = (assets, border, civil, contacts, credit, education, health, households, idp, migration, military,
           _people, statistics, taxpayers, utilities, work)

# the sources that announce each kind of change (their feeds: `World.feed`)
DIN, EDLIYYE, QMKDK, DMX, SEHIYYE = "din", "edliyye", "qmkdk", "dmx", "sehiyye"


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
        self.overlay.record_change(EDLIYYE, "death", found[1].fin, day, acts.death)
        return acts.death

    def register_birth(self, parent: str, day: dt.date, sex: str | None = None) -> civil.CivilAct:
        """A child born on `day` to the married couple `parent` belongs to; returns its birth act.

        The child takes a slot of the family the base world left empty (its FIN starts with 0,
        held by nobody until now), lives with its mother and is linked to both parents.
        ValueError when the couple cannot have it (not married, a parent dead or foreign, the
        mother's age, a sibling born within 300 days, no free slot in the family).
        """
        with self.overlay.lock:
            unit, m = self._living_member(parent)
            man, woman = unit.member(0), unit.member(1)
            if unit.couple != MARRIED or m.role not in (MAN, WOMAN) or man is None or woman is None:
                raise ValueError("a birth is registered to a married couple, and this person is not in one")
            if not (self.living(man) and self.living(woman)):
                raise ValueError("both parents must be alive")
            if man.foreign:
                raise ValueError("a foreign couple's child is registered by their own state")
            if not 16 <= age_on(woman.birth, day) <= 50:
                raise ValueError(f"the mother would be {age_on(woman.birth, day)} on that day")
            if unit.marriage is not None and day < unit.marriage:
                raise ValueError("a birth before the marriage")
            if any(abs((day - c.birth).days) < 300 for c in unit.children):
                raise ValueError("a sibling was born within 300 days of that day")
            free = [slot for slot in CHILD_SLOTS if unit.member(slot) is None]
            if not free:
                raise ValueError("this family has no free place for another child in the synthetic world")
            if sex is None:
                sex = "M" if rng(self.salt, "newborn", unit.number, free[0], day).random() < 0.5 else "F"
            if sex not in ("M", "F"):
                raise ValueError("sex is M or F")
            child = Member(free[0], self.fin_at(unit.number, free[0]), CHILD, sex, day, woman.citizenship, None,
                           woman.home, man.kin, False)
            self.overlay.record_birth(unit.number, child)
        act = civil.birth_act(self, self.unit(unit.number), child)
        self.overlay.record_change(EDLIYYE, "birth", child.fin, day, act)
        return act

    def register_marriage(self, fin: str, day: dt.date) -> civil.CivilAct:
        """The unmarried couple `fin` belongs to marries on `day`; returns the marriage act.

        In the synthetic world a marriage joins a man and the unrelated woman of his unit (an
        unmarried couple: 8 % of families); she moves into his home.
        """
        with self.overlay.lock:
            unit, m = self._living_member(fin)
            man, other = unit.member(0), unit.member(1)
            if (unit.couple != UNMARRIED or m.slot not in (0, 1) or man is None or man.role != MAN
                    or other is None or other.sex != "F"):
                raise ValueError("in the synthetic world a marriage joins an unmarried couple (a man and the "
                                 "woman of his unit), and this person is not in one")
            if not (self.living(man) and self.living(other)):
                raise ValueError("both must be alive")
            if man.foreign or other.foreign:
                raise ValueError("a marriage of foreign citizens is registered by their own state")
            if min(age_on(man.birth, day), age_on(other.birth, day)) < 18:
                raise ValueError("both must be 18 on that day")
            bride = dataclasses.replace(other, role=WOMAN, home=man.home)
            self.overlay.record_unit(unit.number, {"couple": MARRIED, "marriage": day}, {1: bride})
        act = self._union_act(man.fin, "marriages")
        self.overlay.record_change(EDLIYYE, "marriage", man.fin, day, act)
        self._moved(unit.number, [other], day)
        return act

    def register_divorce(self, fin: str, day: dt.date) -> civil.CivilAct:
        """The married couple `fin` belongs to divorces on `day`; returns the divorce act.

        As in the base world, the man leaves the family home (the woman and the children stay);
        a couple married through the overlay lives in his home, so she leaves it, with her children.
        """
        with self.overlay.lock:
            unit, m = self._living_member(fin)
            man, woman = unit.member(0), unit.member(1)
            if unit.couple != MARRIED or m.role not in (MAN, WOMAN) or man is None or woman is None:
                raise ValueError("this person is not married")
            if not (self.living(man) and self.living(woman)):
                raise ValueError("a widowed person cannot divorce")
            if unit.marriage is not None and day <= unit.marriage:
                raise ValueError("a divorce before the marriage")
            if man.foreign:
                raise ValueError("a divorce of foreign citizens is registered by their own state")
            moving: dict[int, Member] = {}
            if man.home == woman.home and man.home == FAMILY_HOME:
                moving[0] = dataclasses.replace(man, home=f"S{man.slot}")
            elif man.home == woman.home:
                home = f"S{woman.slot}"
                moving[1] = dataclasses.replace(woman, home=home)
                for child in unit.children:
                    if child.home == woman.home:
                        moving[child.slot] = dataclasses.replace(child, home=home)
            self.overlay.record_unit(unit.number, {"couple": DIVORCED, "divorce": day}, moving)
        act = self._union_act(man.fin, "divorces")
        self.overlay.record_change(EDLIYYE, "divorce", man.fin, day, act)
        self._moved(unit.number, [x for x in unit.members if x.slot in moving], day)
        return act

    def issue_referral(self, fin: str, day: dt.date, kind: str | None = None,
                       icd10: str | None = None) -> health.Referral:
        """A referral issued to a living person on `day` (kind sanatorium or disability_assessment)."""
        with self.overlay.lock:
            _, m = self._living_member(fin)
            if day < m.birth:
                raise ValueError("a referral before the birth")
            referral = health.new_referral(self, m.fin, day, kind, icd10)
            self.overlay.record_referral(m.fin, referral)
        self.overlay.record_change(SEHIYYE, "referral-issued", m.fin, day, referral)
        return referral

    def end_permit(self, fin: str, kind: str, day: dt.date, *,
                   expired: bool) -> migration.ResidencePermit | migration.WorkPermit:
        """The foreigner's current residence ("residence") or latest work ("work") permit ends: the
        day before `day` (`expired`), or within EXPIRING_NOTICE of it (about to expire)."""
        with self.overlay.lock:
            _, m = self._living_member(fin)
            if not m.foreign:
                raise ValueError("only foreign citizens hold permits")
            if kind == "residence":
                permit: migration.ResidencePermit | migration.WorkPermit | None = self.residence_permit(m.fin)
            elif kind == "work":
                permit = (self.work_permits(m.fin) or (None,))[-1]
            else:
                raise ValueError("kind is 'residence' or 'work'")
            if permit is None:
                raise ValueError(f"the person holds no {kind} permit")
            if expired:
                end = min(permit.end, day - DAY)
            elif permit.end < day:
                raise ValueError("the permit has expired already")
            else:
                end = min(permit.end, day + EXPIRING_NOTICE)
            if end < permit.start:
                raise ValueError("the permit starts after that day")
            self.overlay.record_permit_end(m.fin, permit.number, end)
            permit = dataclasses.replace(permit, end=end)
        self.overlay.record_change(DMX, "permit-expired" if expired else "permit-expiring", m.fin, day, permit)
        return permit

    def feed(self, source: str) -> tuple[Change, ...]:
        """The changes `source` announces (its events), oldest first; `Change.seq` is the cursor."""
        return self.overlay.feed(source)

    def _union_act(self, husband: str, which: str) -> civil.CivilAct:
        acts = self.civil_acts(husband)
        assert acts is not None and getattr(acts, which)
        return getattr(acts, which)[-1]

    def _moved(self, number: int, members: list[Member], day: dt.date) -> None:
        """din announces the new registered address of each member who moved home."""
        unit = self.unit(number)
        for m in members:
            now = unit.member(m.slot)
            if now is not None and self.living(now):
                self.overlay.record_change(DIN, "address-changed", now.fin, day, self.home_address(unit, now.home))

    def change_address(self, fin: str, district_code: str, since: dt.date | None = None) -> Address:
        """Move the person's whole household to a new address in `district_code` (on `since`,
        REFERENCE_DATE by default): din announces each living member's new address."""
        unit, m = self._living_member(fin)
        district = DISTRICTS_BY_CODE.get(district_code)
        if district is None:
            raise ValueError(f"unknown district code {district_code!r}")
        home_id = self.household_id(unit.number, m.home)
        with self.overlay.lock:
            moves = self.overlay.moves.get(home_id, 0)
            new = address(rng(self.salt, "move", home_id, district_code, moves), district)
            self.overlay.record_move(home_id, new)
        self._moved(unit.number, [x for x in unit.members if x.home == m.home], since or REFERENCE_DATE)
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
        for member in idp.kin_members(unit, m):  # qmkdk announces each living member's status
            if self.living(member):
                self.overlay.record_change(QMKDK, "status-changed", member.fin, change.since,
                                           self.idp_status(member.fin))
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
        self.overlay.record_change(DMX, "permit-issued", m.fin, start, permit)
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
        """Forget every registered event (and the feeds): back to the base world.

        The facet caches are emptied too: one may have been filled while a newborn or a changed
        unit was in the overlay.
        """
        self.overlay.reset()
        _clear_caches(_CACHED)
        self._person.cache_clear()

    def _living_member(self, fin: str) -> tuple[Unit, Member]:
        found = self.member(fin)
        if found is None:
            raise ValueError("no person with this FIN")
        if not self.living(found[1]):
            raise ValueError("the person is deceased")
        return found


def _clear_caches(modules: tuple[ModuleType, ...]) -> None:
    for module in modules:
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == module.__name__:
                value.cache_clear()


@lru_cache(maxsize=1)
def world() -> World:
    """The default world (salt DEFAULT_SALT), shared by the simulators."""
    return World()
