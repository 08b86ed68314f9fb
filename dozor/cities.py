"""Reference data for Kazakhstan's cities: ids, names in three languages, population, districts.

One home for places: the simulator weights cities by ``population``, the validator accepts only
these ids, and the dashboard shows ``name(lang)``. Populations are rounded 2024 estimates; the
centre coordinates anchor simulated cameras.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["City", "CITIES", "CITY_IDS", "REGIONS", "city"]


@dataclass(frozen=True)
class City:
    """One city: ``id`` is the stable Latin key stored in ClickHouse and used in Kafka keys."""

    id: str
    ru: str
    kk: str
    en: str
    population: int
    lat: float
    lon: float
    districts: tuple[str, ...]

    def name(self, lang: str) -> str:
        """The city's name in ``lang`` (ru, kk or en), Russian when the language is unknown."""
        return {"ru": self.ru, "kk": self.kk, "en": self.en}.get(lang, self.ru)


CITIES: tuple[City, ...] = (
    City("almaty", "Алматы", "Алматы", "Almaty", 2_230_000, 43.2389, 76.8897,
         ("alatau", "almaly", "auezov", "bostandyk", "zhetysu", "medeu", "nauryzbay", "turksib")),
    City("astana", "Астана", "Астана", "Astana", 1_420_000, 51.1282, 71.4307,
         ("almaty", "saryarka", "yesil", "baikonur", "nura")),
    City("shymkent", "Шымкент", "Шымкент", "Shymkent", 1_210_000, 42.3417, 69.5901,
         ("abay", "al-farabi", "enbekshi", "karatau", "turan")),
    City("karaganda", "Караганда", "Қарағанды", "Karaganda", 500_000, 49.8047, 73.1094,
         ("kazybek-bi", "alikhan-bokeikhan")),
    City("aktobe", "Актобе", "Ақтөбе", "Aktobe", 590_000, 50.2839, 57.1670, ("astana", "almaty")),
    City("taraz", "Тараз", "Тараз", "Taraz", 430_000, 42.9000, 71.3667, ("central",)),
    City("pavlodar", "Павлодар", "Павлодар", "Pavlodar", 360_000, 52.2873, 76.9674, ("central",)),
    City("ust-kamenogorsk", "Усть-Каменогорск", "Өскемен", "Ust-Kamenogorsk", 330_000,
         49.9483, 82.6279, ("central",)),
    City("semey", "Семей", "Семей", "Semey", 350_000, 50.4111, 80.2275, ("central",)),
    City("atyrau", "Атырау", "Атырау", "Atyrau", 300_000, 47.1167, 51.8833, ("central",)),
    City("kostanay", "Костанай", "Қостанай", "Kostanay", 260_000, 53.2144, 63.6246, ("central",)),
    City("kyzylorda", "Кызылорда", "Қызылорда", "Kyzylorda", 330_000, 44.8528, 65.5092, ("central",)),
    City("oral", "Уральск", "Орал", "Oral", 330_000, 51.2333, 51.3667, ("central",)),
    City("petropavl", "Петропавловск", "Петропавл", "Petropavl", 220_000, 54.8667, 69.1500,
         ("central",)),
    City("aktau", "Актау", "Ақтау", "Aktau", 270_000, 43.6500, 51.1667, ("central",)),
    City("temirtau", "Темиртау", "Теміртау", "Temirtau", 180_000, 50.0549, 72.9646, ("central",)),
    City("turkestan", "Туркестан", "Түркістан", "Turkestan", 210_000, 43.2973, 68.2518, ("central",)),
    City("kokshetau", "Кокшетау", "Көкшетау", "Kokshetau", 170_000, 53.2833, 69.4000, ("central",)),
    City("taldykorgan", "Талдыкорган", "Талдықорған", "Taldykorgan", 170_000, 45.0167, 78.3667,
         ("central",)),
    City("ekibastuz", "Экибастуз", "Екібастұз", "Ekibastuz", 150_000, 51.7298, 75.3266, ("central",)),
)  # fmt: skip

CITY_IDS: frozenset[str] = frozenset(c.id for c in CITIES)
_BY_ID = {c.id: c for c in CITIES}


def city(city_id: str) -> City:
    """Look a city up by id; ``KeyError`` names the unknown id."""
    return _BY_ID[city_id]


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
