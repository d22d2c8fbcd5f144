"""The statute's table: the source systems (§4.1.1–4.1.20) and their services, the composite
services the hub answers from several of them, and the events it delivers (shared/catalogue.md).

This is data. Who may call what is the access policy (ehis.policy, from configuration); how a
source's service is called is its source package (ehis.sources, discovered), how a composite is
answered its module in ehis.composites. A service named here that this hub does not serve is
answered `not_served`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ehis.errors import UnknownService

COMPOSITE = "composite"  # the "system" of a service the hub composes from several sources


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    summary: str
    composite: bool = False

    @property
    def system(self) -> str:
        """The source system that answers it, or COMPOSITE."""
        return COMPOSITE if self.composite else self.name.split(".", 1)[0]


@dataclass(frozen=True)
class SystemEntry:
    code: str
    body: str
    english: str
    services: tuple[ServiceEntry, ...]


def _system(code: str, body: str, english: str, *services: tuple[str, str]) -> SystemEntry:
    return SystemEntry(code, body, english, tuple(ServiceEntry(n, s) for n, s in services))


SYSTEMS: tuple[SystemEntry, ...] = (
    _system("din", "Daxili İşlər Nazirliyi", "Ministry of Internal Affairs",
            ("din.person", "identity, document and registered address by FIN"),
            ("din.vehicles", "vehicles registered to the person")),
    _system("mudafie", "Müdafiə Nazirliyi", "Ministry of Defence",
            ("mudafie.service-record", "military service periods, combat veteran flag")),
    _system("edliyye", "Ədliyyə Nazirliyi", "Ministry of Justice",
            ("edliyye.civil-acts", "birth, marriage, divorce and death records")),
    _system("vergiler", "Vergilər Nazirliyi", "tax authority",
            ("vergiler.taxpayer", "taxpayer by VÖEN"),
            ("vergiler.income", "declared and withheld income per month")),
    _system("kend", "Kənd Təsərrüfatı Nazirliyi", "Ministry of Agriculture",
            ("kend.land-plots", "agricultural land plots")),
    _system("tehsil", "Təhsil Nazirliyi", "Ministry of Education",
            ("tehsil.enrolment", "current and past enrolment")),
    _system("sehiyye", "Səhiyyə Nazirliyi", "Ministry of Health",
            ("sehiyye.referrals", "referrals issued by medical institutions")),
    _system("nrytn", "Nəqliyyat, Rabitə və Yüksək Texnologiyalar Nazirliyi",
            "Ministry of Transport, Communications and High Technologies",
            ("nrytn.mobile-numbers", "mobile numbers registered to the FIN")),
    _system("qmkdk", "Qaçqınların və Məcburi Köçkünlərin İşləri üzrə Dövlət Komitəsi",
            "State Committee for Refugees and IDPs",
            ("qmkdk.idp-status", "refugee or IDP status")),
    _system("dsk", "Dövlət Statistika Komitəsi", "State Statistics Committee",
            ("dsk.subsistence-minimum", "subsistence minimum by year and group"),
            ("dsk.average-wage", "nominal average monthly wage")),
    _system("emlak", "Əmlak Məsələləri Dövlət Komitəsi", "State Committee on Property Issues",
            ("emlak.real-estate", "registered real estate")),
    _system("dmx", "Dövlət Miqrasiya Xidməti", "State Migration Service",
            ("dmx.residence-permit", "temporary or permanent residence permit"),
            ("dmx.work-permit", "work permits")),
    _system("dsx", "Dövlət Sərhəd Xidməti", "State Border Service",
            ("dsx.border-crossings", "entries, exits and days abroad")),
    _system("sshcdx", "Səfərbərlik və Hərbi Xidmətə Çağırış üzrə Dövlət Xidməti",
            "State Service for Mobilization and Conscription",
            ("sshcdx.conscription-status", "registered, deferred, served or exempt")),
    _system("kb", "Kredit büroları", "credit bureaus",
            ("kb.credit-report", "loans from every configured bureau")),
    _system("dim", "Dövlət İmtahan Mərkəzi", "State Examination Centre",
            ("dim.exam-results", "exams taken and admission")),
    _system("azerishiq", '"Azərişiq" ASC', "electricity distributor",
            ("azerishiq.consumption", "monthly kWh and debt")),
    _system("azersu", '"Azərsu" ASC', "water utility",
            ("azersu.consumption", "monthly m³ and debt")),
    _system("azeriqaz", '"Azəriqaz" İB', "gas distributor",
            ("azeriqaz.consumption", "monthly m³ and debt")),
    _system("yih", "yerli icra hakimiyyəti orqanları", "local executive authorities",
            ("yih.household", "family composition certificate")),
)

COMPOSITES: tuple[ServiceEntry, ...] = (
    ServiceEntry("emek.contract-prefill", "an employment contract notification prefilled from the employer's "
                 "VÖEN and the employee's FIN (tax authority, Internal Affairs, Migration Service)", composite=True),
    ServiceEntry("vemtas.means-test", "a household's means for targeted social assistance: every member's "
                 "income, property, vehicles, travel, loans, utilities, status and studies", composite=True),
)



@dataclass(frozen=True)
class EventEntry:
    """An event kind of the statute's proactive services: its routing key and who receives it."""

    key: str  # "<system>.<kind>", the routing key on the bus
    summary: str
    receivers: tuple[str, ...]  # the subsystems that act on it (deny by default: ehis.policy)

    @property
    def system(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def kind(self) -> str:
        return self.key.split(".", 1)[1]


_CIVIL_UNION = ("vemtas", "sosial-odenisler")
_PERMITS = ("emek-muqavilesi", "mesgulluq", "qeyri-formal")
EVENTS: dict[str, EventEntry] = {e.key: e for e in (
    EventEntry("edliyye.birth", "a birth registered", ("sosial-odenisler", "vemtas", "ovladliq")),
    EventEntry("edliyye.death", "a death registered", ("pensiya", "sosial-odenisler", "vemtas", "tseras", "sanatoriya")),
    EventEntry("edliyye.marriage", "a marriage registered", _CIVIL_UNION),
    EventEntry("edliyye.divorce", "a divorce registered", _CIVIL_UNION),
    EventEntry("din.address-changed", "a change of registered address", ("vemtas", "sosial-odenisler", "pensiya")),
    EventEntry("qmkdk.status-changed", "a refugee or IDP status granted, changed or withdrawn",
               ("sosial-odenisler", "vemtas", "sovqat")),
    EventEntry("dmx.permit-issued", "a residence or work permit issued", _PERMITS),
    EventEntry("dmx.permit-expiring", "a residence or work permit about to expire", _PERMITS),
    EventEntry("dmx.permit-expired", "a residence or work permit expired", _PERMITS),
    EventEntry("sehiyye.referral-issued", "a medical referral issued", ("tseras", "sanatoriya", "hhe")),
)}

# the hub's own metaservices on the bus (ehis.discovery), after X-Road's PR-META
METASERVICES: tuple[str, ...] = ("meta.list-methods", "meta.allowed-methods", "meta.wsdl")

SYSTEMS_BY_CODE: dict[str, SystemEntry] = {s.code: s for s in SYSTEMS}
SERVICES: dict[str, ServiceEntry] = {svc.name: svc for s in SYSTEMS for svc in s.services} | {
    c.name: c for c in COMPOSITES}


def service(name: str) -> ServiceEntry:
    """The statute's entry of a service, or `UnknownService`."""
    try:
        return SERVICES[name]
    except KeyError:
        raise UnknownService(f"no service {name!r} in the catalogue") from None


def system(code: str) -> SystemEntry:
    try:
        return SYSTEMS_BY_CODE[code]
    except KeyError:
        raise UnknownService(f"no source system {code!r} in the catalogue") from None
