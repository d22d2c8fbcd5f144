"""One seeded, deterministic, LINKED synthetic world for every simulated source.

`world()` is the shared default `World`; `World(salt)` makes another (same salt, same world).
Every facet is computed on first request and cached (bounded `functools.lru_cache`); every draw
is seeded with SHA-256 of the salt and a key (never Python's `hash()`), so one FIN tells one
story in every process. Facts are stated at REFERENCE_DATE = 2025-01-01 (ages too), so nothing
changes as time passes; monthly series (income, consumption) go on past it.

IDENTITY SPACE. A FIN is 7 symbols of `0-9A-HJ-NP-Z`. A well-formed FIN starting with "0" is
held by no registry: no person, and every facet answers "no record". Every other well-formed
FIN is a person. Malformed FINs raise ValueError (input is trimmed and upper-cased first).
FIN -> index in [0, 34**7) -> keyed Feistel permutation (cycle walking) -> n; unit = n // 8,
slot = n % 8; the inverse gives the FIN of any (unit, slot). Slots whose FIN starts with 0 are
absent ("not held"). `World.locate(fin)`, `World.fin_at(unit, slot)`.

UNITS (units.py). If slots 0 and 1 are held, 85 % of units are FAMILIES, else all SINGLES.
- Family: slot 0 a man (born 1950-2001), slot 1 a woman (mostly 0-8 years younger). 8 % never
  married: the woman is then an unrelated single and the man has no children. Otherwise married
  when both are 20+ (man 22+); 12 % divorced later. 0-4 children in slots 2-5, born after the
  marriage, while both parents are 20-40 years older (children never die in the base world).
  70 % of citizen families: slots 6/7 are the man's father and mother (elderly, married to each
  other when both are held, often deceased). Unused child slots and slots 6/7 otherwise hold
  unrelated singles. 1 % of families are foreign (all members share one foreign citizenship;
  no grandparents).
- Singles: adults born 1940-2006 (slot 0 always a man), 15 % foreigners, 1.5 % deceased.
- Deaths (before REFERENCE_DATE, after the marriage, children and divorce): the man 2 % (+10 %
  if born before 1960), the married woman 1.5 % (+5 %) only if the man is alive (a divorced
  woman never, in the base world); grandparents by age (up to 92 %, everyone aged 98+).
  A grandparent whose partner's slot is absent counts as "widowed" (no marriage act).
- Students: children and singles aged 18-22 study full-time (55 % / 35 %).
WHO IS RELATED (family()): spouse = the married partner while both are alive (a death makes the
survivor "widowed"; divorced partners are not spouses); children of the man and the woman are
the unit's children; the man's father and mother are slots 6/7 when linked. Everyone else's
parents are NOT linked (father/mother None): the woman, grandparents, singles.
HOUSEHOLDS (households.py, yih.household): "F" the family home = the married couple (or the
divorced woman, or the widowed partner) + their children under 18 or studying full-time (+ in
60 % of the cases, the man's widowed parent aged 75+, when exactly one is alive and the man is
alive and married); "G" = the grandparents' own home; "S<slot>" = anyone else, alone (singles,
a divorced or never-married man, grown-up children). The deceased belong to no household (their
registered address stays that of their last home). Every member of a household sees the same
id, head, members and address; relations are head/spouse/child/parent/other.
ADDRESSES: one per home; parents' and grown-up children's homes are in the family's district
60 % of the time. The registered address (din) is the home's address. District table: places.py
(`DISTRICTS`, each with `.authority` = "yih-<code suffix>", e.g. "yih-ba" for AZ-BA Bakı).

FACETS: each module's docstring states its no-record rule and details. Per-person facets
answer None (one record) or () (a list) when there is no record, FINs held by nobody included:
ask `person(fin)` first to tell "no such person" from "no record".
din person/vehicles (core.py, people.py, assets.py), edliyye civil acts (civil.py), vergiler
taxpayer/income (taxpayers.py, work.py), kend land plots and emlak real estate (assets.py),
tehsil enrolment and dim exams (education.py), sehiyye referrals (health.py), nrytn mobile
numbers (contacts.py), qmkdk IDP status (idp.py), dsk statistics (statistics.py), dmx permits
(migration.py), dsx border crossings (border.py), sshcdx conscription and mudafie service
(military.py), kb loans (credit.py), utilities (utilities.py).

OVERLAY (overlay.py, thread-safe, `World.reset_overlay()`): `register_death(fin, day)` (death
date, death act, no household, no spouse, employment ends, income stops after the death month,
no phones, conscription gone), `change_address(fin, district_code)` (the whole household moves:
every member's din address, the household, utilities and IDP residence follow; property does
not), `change_idp_status(fin, status, region)` (the whole kin group), `issue_permit(fin, kind,
...)` (foreigners; a residence permit also becomes their din document), `end_permit(fin, kind,
day, expired=...)` (cut short: about to expire, or expired), `register_birth(parent, day)` (a
child of a married citizen couple takes a child slot of the family the base world left empty:
its FIN starts with 0 and was nobody's; birth act, household, parents' acts), `register_marriage`
(an unmarried couple of a unit: she moves into his home), `register_divorce` (he leaves the
family home, or she his), `issue_referral(fin, day)`.
FEEDS: every change a source announces is appended to that source's feed (`World.feed(source)`:
`Change`s numbered from 1, ids stable and unique across resets), which the simulators serve as
events (ehis.simulators.events).
"""

from __future__ import annotations

from .assets import LandPlot, Property, Vehicle
from .border import BorderRecord, Crossing, days_abroad
from .civil import CivilAct, CivilActs
from .contacts import MobileNumber
from .core import DEFAULT_SALT
from .credit import BUREAUS, Loan
from .dates import REFERENCE_DATE
from .education import Admission, Enrolment, ExamResult
from .health import Referral
from .households import Family, Household
from .idp import IdpStatus
from .ids import ALPHABET, SLOTS, UNITS, normalize_fin, normalize_voen
from .migration import ResidencePermit, WorkPermit
from .military import Conscription, ServicePeriod, ServiceRecord
from .people import Document, Person
from .places import (
    AUTHORITIES,
    DISTRICTS,
    DISTRICTS_BY_CODE,
    Address,
    District,
    authority_of,
)
from .statistics import SUBSISTENCE_GROUPS, average_wage, subsistence_minimum
from .taxpayers import Taxpayer
from .utilities import UTILITY_KINDS, Consumption, MonthlyUse, Subscription
from .work import IncomeMonth, Job
from .world import World, world

__all__ = [
    "ALPHABET", "AUTHORITIES", "BUREAUS", "DEFAULT_SALT", "DISTRICTS", "DISTRICTS_BY_CODE", "REFERENCE_DATE",
    "SLOTS", "SUBSISTENCE_GROUPS", "UNITS", "UTILITY_KINDS",
    "Address", "Admission", "BorderRecord", "CivilAct", "CivilActs", "Conscription", "Consumption", "Crossing",
    "District", "Document", "Enrolment", "ExamResult", "Family", "Household", "IdpStatus", "IncomeMonth", "Job",
    "LandPlot", "Loan", "MobileNumber", "MonthlyUse", "Person", "Property", "Referral", "ResidencePermit",
    "ServicePeriod", "ServiceRecord", "Subscription", "Taxpayer", "Vehicle", "WorkPermit", "World",
    "authority_of", "average_wage", "days_abroad", "normalize_fin", "normalize_voen", "subsistence_minimum",
    "world",
]
