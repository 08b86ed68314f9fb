"""Make the approximate district map shipped in dozor/data/districts.geojson.

Provenance, stated plainly: official district boundaries of Kazakhstan's cities are not available
to this build, so each multi-district city is split into Voronoi cells around its districts'
centres (dozor/cities.py), clipped to a disc of the city's ``radius_km``; a city without districts
is one disc. Good enough to put a camera or a 102-app call in the right part of town for figures;
replace the file with the akimats' boundaries (same properties: city, district) for production.

Run: ``.venv/bin/python infra/geo/make_districts.py`` (rewrites the file; a test checks it).
"""

from __future__ import annotations

import json
import math

from shapely.geometry import MultiPoint, Point, Polygon, mapping
from shapely.ops import voronoi_diagram

from dozor.cities import CITIES
from dozor.geo import DISTRICTS_FILE


def _ellipse(x: float, y: float, rx: float, ry: float, n: int = 96) -> Polygon:
    """A disc of the city in degrees: an ellipse, since a degree of longitude shrinks with latitude."""
    return Polygon(
        [(x + rx * math.cos(2 * math.pi * i / n), y + ry * math.sin(2 * math.pi * i / n)) for i in range(n)]
    )


def build() -> dict:
    features = []
    for c in CITIES:
        ry = c.radius_km / 111.2
        disc = _ellipse(c.lon, c.lat, ry / math.cos(math.radians(c.lat)), ry)
        if len(c.districts) == 1:
            cells = {c.districts[0].id: disc}
        else:
            centres = MultiPoint([(d.lon, d.lat) for d in c.districts])
            regions = voronoi_diagram(centres, envelope=disc.envelope.buffer(1.0))
            cells = {}
            for d in c.districts:
                cell = next(g for g in regions.geoms if g.contains(Point(d.lon, d.lat)))
                cells[d.id] = cell.intersection(disc)
        for district, geom in cells.items():
            rounded = json.loads(json.dumps(mapping(geom)), parse_float=lambda v: round(float(v), 5))
            features.append(
                {"type": "Feature", "properties": {"city": c.id, "district": district}, "geometry": rounded}
            )
    return {"type": "FeatureCollection", "features": features}


def main() -> None:
    DISTRICTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    DISTRICTS_FILE.write_text(json.dumps(build(), ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {DISTRICTS_FILE}")


if __name__ == "__main__":
    main()
