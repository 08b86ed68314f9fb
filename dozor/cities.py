"""Reference data for Kazakhstan's cities: ids, names in three languages, population, districts.

One home for places: the simulator weights cities by ``population``, the validator accepts only
these ids, and the dashboard shows ``name(lang)``. Populations are rounded 2024 estimates; the
centre coordinates anchor simulated cameras.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "City", "District", "CITIES", "CITY_IDS", "REGIONS", "city", "resolve_city", "resolve_district",
    "place_key",
]  # fmt: skip


@dataclass(frozen=True)
class _Place:
    """A place with a stable Latin ``id`` and its names in Russian, Kazakh and English."""

    id: str
    ru: str
    kk: str
    en: str

    def name(self, lang: str) -> str:
        """The name in ``lang`` (ru, kk or en), Russian when the language is unknown."""
        return {"ru": self.ru, "kk": self.kk, "en": self.en}.get(lang, self.ru)


@dataclass(frozen=True)
class District(_Place):
    """A city district: ``id`` is the stable Latin key; the centre seeds its boundary (dozor/geo.py)."""

    lat: float
    lon: float


@dataclass(frozen=True)
class City(_Place):
    """One city: ``id`` is the stable Latin key stored in ClickHouse and used in Kafka keys.

    ``aliases`` are other spellings met in source systems (former names, transliterations); the
    worker maps them, and the names in the three languages, to ``id`` (:func:`resolve_city`).
    ``radius_km`` bounds the city's district map.
    """

    population: int
    lat: float
    lon: float
    districts: tuple[District, ...] = ()
    aliases: tuple[str, ...] = ()
    radius_km: float = 20.0
    #: The districts' ids, for the per-event "is this already an id" test of the worker.
    district_ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "district_ids", frozenset(d.id for d in self.districts))


def _central(lat: float, lon: float) -> tuple[District, ...]:
    """Cities not divided into districts have one, the whole city."""
    return (District("central", "Центр", "Орталық", "Central", lat, lon),)


D = District
CITIES: tuple[City, ...] = (
    City("almaty", "Алматы", "Алматы", "Almaty", 2_230_000, 43.2389, 76.8897, (
        D("alatau", "Алатауский", "Алатау", "Alatau", 43.300, 76.840),
        D("almaly", "Алмалинский", "Алмалы", "Almaly", 43.255, 76.915),
        D("auezov", "Ауэзовский", "Әуезов", "Auezov", 43.230, 76.845),
        D("bostandyk", "Бостандыкский", "Бостандық", "Bostandyk", 43.205, 76.910),
        D("zhetysu", "Жетысуский", "Жетісу", "Zhetysu", 43.285, 76.930),
        D("medeu", "Медеуский", "Медеу", "Medeu", 43.225, 76.985),
        D("nauryzbay", "Наурызбайский", "Наурызбай", "Nauryzbay", 43.190, 76.790),
        D("turksib", "Турксибский", "Түрксіб", "Turksib", 43.330, 76.960),
    ), ("Алма-Ата", "Alma-Ata"), 22.0),
    City("astana", "Астана", "Астана", "Astana", 1_420_000, 51.1282, 71.4307, (
        D("almaty", "Алматы", "Алматы", "Almaty", 51.145, 71.500),
        D("saryarka", "Сарыарка", "Сарыарқа", "Saryarka", 51.180, 71.390),
        D("yesil", "Есиль", "Есіл", "Yesil", 51.095, 71.420),
        D("baikonur", "Байконыр", "Байқоңыр", "Baikonur", 51.170, 71.455),
        D("nura", "Нура", "Нұра", "Nura", 51.060, 71.340),
    ), ("Нур-Султан", "Nur-Sultan", "Нұр-Сұлтан", "Акмола", "Aqmola", "Целиноград", "Astana city"), 22.0),
    City("shymkent", "Шымкент", "Шымкент", "Shymkent", 1_210_000, 42.3417, 69.5901, (
        D("abay", "Абайский", "Абай", "Abay", 42.330, 69.545),
        D("al-farabi", "Аль-Фарабийский", "Әл-Фараби", "Al-Farabi", 42.320, 69.600),
        D("enbekshi", "Енбекшинский", "Еңбекші", "Enbekshi", 42.300, 69.645),
        D("karatau", "Каратауский", "Қаратау", "Karatau", 42.375, 69.620),
        D("turan", "Туранский", "Тұран", "Turan", 42.360, 69.520),
    ), ("Чимкент", "Chimkent"), 20.0),
    City("karaganda", "Караганда", "Қарағанды", "Karaganda", 500_000, 49.8047, 73.1094, (
        D("kazybek-bi", "Район им. Казыбек би", "Қазыбек би", "Kazybek Bi", 49.790, 73.090),
        D("alikhan-bokeikhan", "Район Алихана Бокейхана", "Әлихан Бөкейхан", "Alikhan Bokeikhan",
          49.830, 73.140),
    ), ("Qaraghandy", "Karagandy")),
    City("aktobe", "Актобе", "Ақтөбе", "Aktobe", 590_000, 50.2839, 57.1670, (
        D("astana", "Район Астана", "Астана ауданы", "Astana district", 50.275, 57.205),
        D("almaty", "Район Алматы", "Алматы ауданы", "Almaty district", 50.295, 57.140),
    ), ("Актюбинск", "Aqtobe")),
    City("taraz", "Тараз", "Тараз", "Taraz", 430_000, 42.9000, 71.3667, _central(42.9000, 71.3667),
         ("Джамбул", "Zhambyl")),
    City("pavlodar", "Павлодар", "Павлодар", "Pavlodar", 360_000, 52.2873, 76.9674,
         _central(52.2873, 76.9674)),
    City("ust-kamenogorsk", "Усть-Каменогорск", "Өскемен", "Ust-Kamenogorsk", 330_000,
         49.9483, 82.6279, _central(49.9483, 82.6279), ("Oskemen", "Öskemen")),
    City("semey", "Семей", "Семей", "Semey", 350_000, 50.4111, 80.2275, _central(50.4111, 80.2275),
         ("Семипалатинск", "Semipalatinsk")),
    City("atyrau", "Атырау", "Атырау", "Atyrau", 300_000, 47.1167, 51.8833, _central(47.1167, 51.8833),
         ("Гурьев",)),
    City("kostanay", "Костанай", "Қостанай", "Kostanay", 260_000, 53.2144, 63.6246,
         _central(53.2144, 63.6246), ("Кустанай", "Qostanay")),
    City("kyzylorda", "Кызылорда", "Қызылорда", "Kyzylorda", 330_000, 44.8528, 65.5092,
         _central(44.8528, 65.5092), ("Qyzylorda",)),
    City("oral", "Уральск", "Орал", "Oral", 330_000, 51.2333, 51.3667, _central(51.2333, 51.3667),
         ("Uralsk",)),
    City("petropavl", "Петропавловск", "Петропавл", "Petropavl", 220_000, 54.8667, 69.1500,
         _central(54.8667, 69.1500), ("Petropavlovsk",)),
    City("aktau", "Актау", "Ақтау", "Aktau", 270_000, 43.6500, 51.1667, _central(43.6500, 51.1667),
         ("Шевченко", "Aqtau")),
    City("temirtau", "Темиртау", "Теміртау", "Temirtau", 180_000, 50.0549, 72.9646,
         _central(50.0549, 72.9646)),
    City("turkestan", "Туркестан", "Түркістан", "Turkestan", 210_000, 43.2973, 68.2518,
         _central(43.2973, 68.2518), ("Turkistan",)),
    City("kokshetau", "Кокшетау", "Көкшетау", "Kokshetau", 170_000, 53.2833, 69.4000,
         _central(53.2833, 69.4000), ("Кокчетав", "Kokchetav")),
    City("taldykorgan", "Талдыкорган", "Талдықорған", "Taldykorgan", 170_000, 45.0167, 78.3667,
         _central(45.0167, 78.3667), ("Taldyqorghan",)),
    City("ekibastuz", "Экибастуз", "Екібастұз", "Ekibastuz", 150_000, 51.7298, 75.3266,
         _central(51.7298, 75.3266)),
)  # fmt: skip
del D

CITY_IDS: frozenset[str] = frozenset(c.id for c in CITIES)
_BY_ID = {c.id: c for c in CITIES}


def city(city_id: str) -> City:
    """Look a city up by id; ``KeyError`` names the unknown id."""
    return _BY_ID[city_id]


_DISTRICT_WORDS = ("район", "ауданы", "district", "р-н", "им.", "имени")


def place_key(name: str) -> str:
    """A spelling-insensitive key: case, ``ё``, hyphens, spaces and the word "district" do not count.

    "Нур-Султан", "нур султан" and "NUR-SULTAN" are one place; Russian adjectival district names
    ("Есильский район") are not reduced to their stems here, so they are listed as aliases instead.
    """
    s = name.casefold().replace("ё", "е")
    for w in _DISTRICT_WORDS:
        s = s.replace(w, " ")
    return "".join(ch for ch in s if ch.isalnum())


_CITY_BY_KEY: dict[str, str] = {}
for _c in CITIES:
    for _n in (_c.id, _c.ru, _c.kk, _c.en, *_c.aliases):
        _CITY_BY_KEY.setdefault(place_key(_n), _c.id)
_DISTRICT_BY_KEY: dict[tuple[str, str], str] = {}
for _c in CITIES:
    for _d in _c.districts:
        for _n in (_d.id, _d.ru, _d.kk, _d.en):
            _DISTRICT_BY_KEY.setdefault((_c.id, place_key(_n)), _d.id)
del _c, _d, _n


def resolve_city(name: str) -> str | None:
    """The city id for any known spelling (id, Russian, Kazakh, Latin, former names), else None."""
    if name in _BY_ID:
        return name
    return _CITY_BY_KEY.get(place_key(name))


def resolve_district(city_id: str, name: str) -> str | None:
    """The district id of ``city_id`` for any known spelling of it, else None."""
    return _DISTRICT_BY_KEY.get((city_id, place_key(name)))


#: Regions for figures reported by region (integrity reports): the 17 oblasts and the three cities
#: of republican significance, by stable Latin id.
REGIONS: frozenset[str] = frozenset(
    {
        "astana", "almaty", "shymkent", "abai", "akmola", "aktobe-region", "almaty-region",
        "atyrau-region", "east-kazakhstan", "jambyl", "jetisu", "karaganda-region", "kostanay-region",
        "kyzylorda-region", "mangystau", "north-kazakhstan", "pavlodar-region", "turkistan",
        "ulytau", "west-kazakhstan",
    }
)  # fmt: skip
