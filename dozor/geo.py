"""District boundaries and the point-in-polygon lookup that fills a missing district.

The boundaries are data (``dozor/data/districts.geojson``, one GeoJSON feature per district with
``city`` and ``district`` properties), loaded once with shapely. The shipped file is an
approximation made by ``infra/geo/make_districts.py`` (Voronoi cells around each district's centre,
clipped to the city's radius), not the akimats' cadastral boundaries: swap in the official file and
nothing else changes. The simulator places cameras and incidents with the same map, so a simulated
event's district label and its coordinates agree.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

__all__ = ["DISTRICTS_FILE", "DistrictMap", "AreaMap", "district_map"]

DISTRICTS_FILE = Path(__file__).resolve().parent / "data" / "districts.geojson"

#: Points remembered by :meth:`DistrictMap.district_at`: every camera of the country, many times over.
POINT_CACHE_SIZE = 65_536


@dataclass(frozen=True)
class _Area:
    district: str
    geom: BaseGeometry


class DistrictMap:
    """Which district of a city a point lies in."""

    def __init__(self, geojson: dict) -> None:
        self._areas: dict[str, list[_Area]] = {}
        for f in geojson["features"]:
            geom = shape(f["geometry"])
            shapely.prepare(geom)  # repeated contains tests: build the index once
            p = f["properties"]
            self._areas.setdefault(p["city"], []).append(_Area(p["district"], geom))
        self._cached = lru_cache(maxsize=POINT_CACHE_SIZE)(self._district_at)

    @classmethod
    def load(cls, path: Path = DISTRICTS_FILE) -> DistrictMap:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def district_at(self, city_id: str, lat: float, lon: float) -> str:
        """The district containing (lat, lon), or "" when the point is outside the city's map.

        Cached: cameras stand still, so most lookups repeat a point, and the polygon tests were 5%
        of the ingest worker's time. The bound keeps moving sources (app GPS fixes) from growing it.
        """
        return self._cached(city_id, lat, lon)

    def _district_at(self, city_id: str, lat: float, lon: float) -> str:
        for a in self._areas.get(city_id, ()):
            if shapely.contains_xy(a.geom, lon, lat):
                return a.district
        return ""

    def geometry(self, city_id: str, district: str) -> BaseGeometry:
        for a in self._areas[city_id]:
            if a.district == district:
                return a.geom
        raise KeyError(f"{city_id}/{district}")

    def random_point(self, city_id: str, district: str, rng: random.Random) -> tuple[float, float]:
        """A uniformly random (lat, lon) inside a district, rounded like a GPS fix (5 decimals).

        Rejection sampling in the bounding box: districts are compact, so few draws are wasted.
        """
        geom = self.geometry(city_id, district)
        x0, y0, x1, y1 = geom.bounds
        while True:
            lon, lat = round(rng.uniform(x0, x1), 5), round(rng.uniform(y0, y1), 5)
            if shapely.contains_xy(geom, lon, lat):
                return lat, lon


class AreaMap:
    """A department's own areas (beats, sectors, substations), from its GeoJSON, by its own ids.

    Loaded as data by a replay mapping's ``[areas]`` table: the file's features and the property
    that holds each one's id, nothing in code. An STRtree finds the candidates of a point, so a
    city's few hundred beats cost a lookup of a few polygons.
    """

    def __init__(self, geojson: dict, id_property: str, source: str = "GeoJSON") -> None:
        self.source = source
        ids, geoms, known = [], [], []
        #: Areas the file names without a shape (``"geometry": null`` is valid GeoJSON): their ids
        #: are known, so a call naming one is not "unknown", but no position can fall in them.
        self.without_geometry: list[str] = []
        for i, f in enumerate(geojson.get("features", ())):
            props = f.get("properties") or {}
            if props.get(id_property) in (None, ""):
                raise ValueError(f"{source}: feature {i} has no {id_property!r} property")
            area_id = str(props[id_property])
            known.append(area_id)
            if not f.get("geometry"):
                self.without_geometry.append(area_id)
                continue
            try:
                geom = shape(f["geometry"])
            except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as e:
                raise ValueError(
                    f"{source}: area {area_id!r} has a geometry shapely cannot read: {e}"
                ) from None
            shapely.prepare(geom)
            ids.append(area_id)
            geoms.append(geom)
        if not known:
            raise ValueError(f"{source}: no features")
        self.ids = frozenset(known)
        self._ids, self._geoms = ids, geoms
        self._tree = shapely.STRtree(geoms)

    @classmethod
    def load(cls, path: Path, id_property: str) -> AreaMap:
        return cls(json.loads(path.read_text(encoding="utf-8")), id_property, path.name)

    def area_at(self, lat: float, lon: float) -> str:
        """The id of the area holding (lat, lon), or "" when none does."""
        point = shapely.Point(lon, lat)
        for i in self._tree.query(point):
            if shapely.contains_xy(self._geoms[i], lon, lat):
                return self._ids[i]
        return ""


@cache
def district_map() -> DistrictMap:
    """The shipped map, loaded once per process."""
    return DistrictMap.load()
