"""The one table of source systems and their services that every layer reads.

A service is *built* when it names its SOAP operation, its params model and its mapper; the
rest of the table is the statute's list (shared/catalogue.md) waiting for its contract. The
worker serves built services only, so a request for an unbuilt one fails fast as unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ehis.errors import UnknownService
from ehis.mapping import din


@dataclass(frozen=True)
class Service:
    name: str
    summary: str
    operation: str | None = None
    params: type[BaseModel] | None = None
    mapper: Callable[[Any], BaseModel] | None = None
    subject_param: str | None = "fin"
    cache_ttl: float | None = None  # seconds an answer may be reused; None = always ask the source

    @property
    def system(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def built(self) -> bool:
        return self.operation is not None and self.params is not None and self.mapper is not None


@dataclass(frozen=True)
class System:
    code: str
    body: str
    english: str
    services: tuple[Service, ...] = field(default_factory=tuple)

    @property
    def contract(self) -> str:
        """The contract's file name under ehis/contracts/wsdl/."""
        return f"{self.code}.wsdl"

    @property
    def built(self) -> bool:
        return any(s.built for s in self.services)


MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def _s(name: str, summary: str, **kw: Any) -> Service:
    return Service(name, summary, **kw)


SYSTEMS: tuple[System, ...] = (
    System("din", "Daxili İşlər Nazirliyi", "Ministry of Internal Affairs", (
        _s("din.person", "identity, document and registered address by FIN", cache_ttl=5 * MINUTE,
           operation="GetPerson", params=din.PersonQuery, mapper=din.to_person),
        _s("din.vehicles", "vehicles registered to the person", cache_ttl=HOUR),
    )),
    System("mudafie", "Müdafiə Nazirliyi", "Ministry of Defence", (
        _s("mudafie.service-record", "military service periods, combat veteran flag", cache_ttl=DAY),
    )),
    System("edliyye", "Ədliyyə Nazirliyi", "Ministry of Justice", (
        _s("edliyye.civil-acts", "birth, marriage, divorce and death records", cache_ttl=HOUR),
    )),
    System("vergiler", "Vergilər Nazirliyi", "tax authority", (
        _s("vergiler.taxpayer", "taxpayer by VÖEN", cache_ttl=HOUR, subject_param="voen"),
        _s("vergiler.income", "declared and withheld income per month", cache_ttl=HOUR),
    )),
    System("kend", "Kənd Təsərrüfatı Nazirliyi", "Ministry of Agriculture", (
        _s("kend.land-plots", "agricultural land plots", cache_ttl=DAY),
    )),
    System("tehsil", "Təhsil Nazirliyi", "Ministry of Education", (
        _s("tehsil.enrolment", "current and past enrolment", cache_ttl=HOUR),
    )),
    System("sehiyye", "Səhiyyə Nazirliyi", "Ministry of Health", (
        _s("sehiyye.referrals", "referrals issued by medical institutions"),
    )),
    System("nrytn", "Nəqliyyat, Rabitə və Yüksək Texnologiyalar Nazirliyi",
           "Ministry of Transport, Communications and High Technologies", (
        _s("nrytn.mobile-numbers", "mobile numbers registered to the FIN", cache_ttl=HOUR),
    )),
    System("qmkdk", "Qaçqınların və Məcburi Köçkünlərin İşləri üzrə Dövlət Komitəsi",
           "State Committee for Refugees and IDPs", (
        _s("qmkdk.idp-status", "refugee or IDP status", cache_ttl=DAY),
    )),
    System("dsk", "Dövlət Statistika Komitəsi", "State Statistics Committee", (
        _s("dsk.subsistence-minimum", "subsistence minimum by year and group", cache_ttl=DAY, subject_param=None),
        _s("dsk.average-wage", "nominal average monthly wage", cache_ttl=DAY, subject_param=None),
    )),
    System("emlak", "Əmlak Məsələləri Dövlət Komitəsi", "State Committee on Property Issues", (
        _s("emlak.real-estate", "registered real estate", cache_ttl=DAY),
    )),
    System("dmx", "Dövlət Miqrasiya Xidməti", "State Migration Service", (
        _s("dmx.residence-permit", "temporary or permanent residence permit", cache_ttl=HOUR),
        _s("dmx.work-permit", "work permits", cache_ttl=HOUR),
    )),
    System("dsx", "Dövlət Sərhəd Xidməti", "State Border Service", (
        _s("dsx.border-crossings", "entries, exits and days abroad", cache_ttl=HOUR),
    )),
    System("sshcdx", "Səfərbərlik və Hərbi Xidmətə Çağırış üzrə Dövlət Xidməti",
           "State Service for Mobilization and Conscription", (
        _s("sshcdx.conscription-status", "registered, deferred, served or exempt", cache_ttl=DAY),
    )),
    System("kb", "Kredit büroları", "credit bureaus", (
        _s("kb.credit-report", "loans from every configured bureau"),
    )),
    System("dim", "Dövlət İmtahan Mərkəzi", "State Examination Centre", (
        _s("dim.exam-results", "exams taken and admission", cache_ttl=DAY),
    )),
    System("azerishiq", '"Azərişiq" ASC', "electricity distributor", (
        _s("azerishiq.consumption", "monthly kWh and debt", cache_ttl=HOUR),
    )),
    System("azersu", '"Azərsu" ASC', "water utility", (
        _s("azersu.consumption", "monthly m³ and debt", cache_ttl=HOUR),
    )),
    System("azeriqaz", '"Azəriqaz" İB', "gas distributor", (
        _s("azeriqaz.consumption", "monthly m³ and debt", cache_ttl=HOUR),
    )),
    System("yih", "yerli icra hakimiyyəti orqanları", "local executive authorities", (
        _s("yih.household", "family composition certificate", cache_ttl=HOUR),
    )),
)

SYSTEMS_BY_CODE: dict[str, System] = {s.code: s for s in SYSTEMS}
SERVICES: dict[str, Service] = {svc.name: svc for s in SYSTEMS for svc in s.services}


def service(name: str) -> Service:
    """The catalogue entry of a service, or `UnknownService` naming what exists."""
    try:
        return SERVICES[name]
    except KeyError:
        raise UnknownService(f"no service {name!r} in the catalogue") from None


def system(code: str) -> System:
    try:
        return SYSTEMS_BY_CODE[code]
    except KeyError:
        raise UnknownService(f"no source system {code!r} in the catalogue") from None


def built_systems() -> list[System]:
    return [s for s in SYSTEMS if s.built]
