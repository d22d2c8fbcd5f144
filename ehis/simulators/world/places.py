"""Places: the districts the world lives in, their local executive authorities, and addresses.

The street and village names are Faker's `az_AZ` data, title-cased the Azerbaijani way
(`_az_title`: dotted and dotless i).
Each district names the local executive authority (`yih-<suffix>`) that answers household
certificates for the people registered there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from faker.providers.address.az_AZ import Provider as _FakerAddresses


@dataclass(frozen=True)
class District:
    code: str  # ISO 3166-2:AZ
    name: str
    city: bool  # a city (şəhər) rather than a district (rayon)
    weight: int  # relative share of the population
    plate: str  # vehicle plate region code

    @property
    def authority(self) -> str:
        """The local executive authority (yerli icra hakimiyyəti) of this city or district."""
        return "yih-" + self.code.split("-")[1].lower()


@dataclass(frozen=True)
class Address:
    text: str
    district_code: str
    district_name: str


DISTRICTS: tuple[District, ...] = (
    District("AZ-BA", "Bakı", True, 40, "10"),
    District("AZ-GA", "Gəncə", True, 7, "20"),
    District("AZ-SM", "Sumqayıt", True, 6, "50"),
    District("AZ-MI", "Mingəçevir", True, 2, "45"),
    District("AZ-LA", "Lənkəran", True, 2, "42"),
    District("AZ-SA", "Şəki", True, 2, "55"),
    District("AZ-SR", "Şirvan", True, 2, "67"),
    District("AZ-YE", "Yevlax", True, 1, "66"),
    District("AZ-NA", "Naftalan", True, 1, "46"),
    District("AZ-ABS", "Abşeron", False, 4, "01"),
    District("AZ-QBA", "Quba", False, 3, "40"),
    District("AZ-QAB", "Qəbələ", False, 2, "36"),
    District("AZ-ISM", "İsmayıllı", False, 2, "31"),
    District("AZ-MAS", "Masallı", False, 3, "44"),
    District("AZ-SAB", "Sabirabad", False, 2, "54"),
    District("AZ-SKR", "Şəmkir", False, 3, "57"),
    District("AZ-ZAQ", "Zaqatala", False, 2, "62"),
    District("AZ-XAC", "Xaçmaz", False, 2, "26"),
    District("AZ-TOV", "Tovuz", False, 2, "60"),
    District("AZ-BAR", "Bərdə", False, 2, "09"),
    District("AZ-AST", "Astara", False, 1, "07"),
    District("AZ-SAL", "Salyan", False, 2, "52"),
)
DISTRICTS_BY_CODE: dict[str, District] = {d.code: d for d in DISTRICTS}
AUTHORITIES: dict[str, str] = {d.code: d.authority for d in DISTRICTS}
RURAL_DISTRICTS: tuple[District, ...] = tuple(d for d in DISTRICTS if not d.city)
BAKU_PLATES = ("10", "90", "99", "77")
_CUM_WEIGHTS = tuple(sum(d.weight for d in DISTRICTS[: i + 1]) for i in range(len(DISTRICTS)))

BAKU_RAIONS = (
    "Binəqədi", "Nərimanov", "Nəsimi", "Nizami", "Qaradağ", "Sabunçu",
    "Səbail", "Suraxanı", "Xətai", "Xəzər", "Yasamal", "Pirallahı",
)
ASAN_CENTRES = (
    "Bakı 1 saylı ASAN xidmət mərkəzi",
    "Bakı 2 saylı ASAN xidmət mərkəzi",
    "Bakı 3 saylı ASAN xidmət mərkəzi",
    "Bakı 5 saylı ASAN xidmət mərkəzi",
    "Gəncə ASAN xidmət mərkəzi",
    "Sumqayıt ASAN xidmət mərkəzi",
    "Şəki ASAN xidmət mərkəzi",
    "Masallı ASAN xidmət mərkəzi",
)
# regions of origin: occupied districts (IDPs) and Armenia (refugees of 1988-1992)
KARABAKH_DISTRICTS = (
    "Ağdam", "Füzuli", "Cəbrayıl", "Kəlbəcər", "Laçın", "Qubadlı",
    "Zəngilan", "Şuşa", "Xocalı", "Xocavənd", "Ağdərə",
)
ARMENIA_REGIONS = ("Qafan", "Gorus", "Sisian", "Vardenis", "Masis", "Quqark", "Basarkeçər")
CHECKPOINTS = (
    ("Heydər Əliyev Beynəlxalq Aeroportu", 60),
    ("Qəbələ Beynəlxalq Aeroportu", 2),
    ("Gəncə Beynəlxalq Aeroportu", 3),
    ("Naxçıvan Beynəlxalq Aeroportu", 4),
    ("Samur sərhəd-buraxılış məntəqəsi", 10),
    ("Qırmızı Körpü sərhəd-buraxılış məntəqəsi", 9),
    ("Astara sərhəd-buraxılış məntəqəsi", 7),
    ("Biləsuvar sərhəd-buraxılış məntəqəsi", 3),
    ("Bakı Beynəlxalq Dəniz Ticarət Limanı", 2),
)
_CHECKPOINT_NAMES = [c[0] for c in CHECKPOINTS]
_CHECKPOINT_CUM = tuple(sum(c[1] for c in CHECKPOINTS[: i + 1]) for i in range(len(CHECKPOINTS)))
_STREETS = tuple(_FakerAddresses.streets)
_VILLAGES = tuple(_FakerAddresses.villages)


def pick_district(rng: random.Random) -> District:
    """A district drawn by population weight (Baku the most likely)."""
    return rng.choices(DISTRICTS, cum_weights=_CUM_WEIGHTS)[0]


def near_district(rng: random.Random, home: District, stay: float) -> District:
    """The same district with probability `stay`, otherwise any (relatives live near each other)."""
    return home if rng.random() < stay else pick_district(rng)


def authority_of(district_code: str) -> str:
    """The local executive authority answering for a district code (KeyError when unknown)."""
    return AUTHORITIES[district_code]


def address(rng: random.Random, district: District, *, office: bool = False) -> Address:
    """A street address in `district`: a flat in a city, a house in a town or village."""
    street = f"{street_name(rng.choice(_STREETS))} küçəsi"
    house = rng.randint(1, 180)
    if district.city:
        place = f"{district.name} şəhəri"
        if district.code == "AZ-BA":
            place += f", {rng.choice(BAKU_RAIONS)} rayonu"
        tail = f"bina {house}" if office else f"ev {house}, mənzil {rng.randint(1, 120)}"
        text = f"{place}, {street}, {tail}"
    elif office or rng.random() < 0.5:
        text = f"{district.name} rayonu, {district.name} şəhəri, {street}, {'bina' if office else 'ev'} {house}"
    else:
        text = f"{district.name} rayonu, {az_title(rng.choice(_VILLAGES))} kəndi, {street}, ev {house}"
    return Address(text, district.code, district.name)


def local_place(district: District, rng: random.Random) -> str:
    """The place name used in institution names: a Baku raion or the city/district itself."""
    if district.code == "AZ-BA":
        return f"Bakı şəhəri {rng.choice(BAKU_RAIONS)} rayonu"
    return f"{district.name} {'şəhəri' if district.city else 'rayonu'}"


def registry_office(district: District) -> str:
    """The civil registry office (Qeydiyyat şöbəsi) of a district."""
    return f"{district.name} {'şəhər' if district.city else 'rayon'} Qeydiyyat şöbəsi"


def checkpoint(rng: random.Random) -> str:
    return rng.choices(_CHECKPOINT_NAMES, cum_weights=_CHECKPOINT_CUM)[0]


def street_name(raw: str) -> str:
    """Faker's street list is upper-case and one entry already ends in "KÜÇƏSİ,"."""
    return az_title(raw.strip(" ,")).removesuffix(" Küçəsi")


_AZ_LOWER = str.maketrans({"I": "ı", "İ": "i"})


def az_title(text: str) -> str:
    """Title case with Azerbaijani dotted/dotless i (Python's str.title gets İ and I wrong)."""
    out: list[str] = []
    start = True
    for ch in text:
        if start:
            out.append(ch.upper() if ch not in "iı" else {"i": "İ", "ı": "I"}[ch])
        else:
            out.append(ch.translate(_AZ_LOWER).lower())
        start = ch in " .-"
    return "".join(out)
