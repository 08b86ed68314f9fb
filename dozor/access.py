"""Who may see what: roles and scopes as data, and the scope every dashboard query takes.

Why data, not code: a ministry adds a district head or moves a city to another team without a
release. The access file (``DOZOR_ACCESS_FILE``, TOML; ``infra/access/dev.toml`` holds the demo
users of ``dozor up``) maps a signed-in user (by e-mail or OIDC subject) or one of their IdP groups
to a role and to the cities and districts it covers:

.. code-block:: toml

    [[assign]]
    user = "astana.head@police.kz"   # or: group = "astana-heads"
    role = "city_head"
    cities = ["astana"]

Roles (:data:`ROLES`): ``ministry_analyst`` (all cities, integrity reports, the audit log), ``city_head`` (its
cities), ``district_head`` (some districts of one city), ``duty_officer`` (its cities),
``integrity_officer`` (integrity reports of all regions, nothing else). A user the file does not
name has no scope and sees nothing. Sign-in itself (OIDC) only says who someone is.

The scope is enforced below the UI: every query function of ``dashboard/queries/`` takes a
:class:`Scope` and refuses (:class:`AccessDenied`) a city or district it does not cover, so an
edited URL gets a refusal, never the figures.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dozor.cities import CITY_IDS, city
from dozor.errors import ConfigError, DozorError

__all__ = ["Scope", "AccessDenied", "AccessPolicy", "ROLES", "KIOSK", "DEV_ACCESS_FILE"]

DEV_ACCESS_FILE = Path(__file__).resolve().parent.parent / "infra" / "access" / "dev.toml"

#: What each role may see beyond its cities and districts.
ROLES: dict[str, dict[str, bool]] = {
    "ministry_analyst": {"all_cities": True, "integrity": True, "operations": True, "audit": True},
    "city_head": {"all_cities": False, "integrity": False, "operations": True, "audit": False},
    "district_head": {"all_cities": False, "integrity": False, "operations": True, "audit": False},
    "duty_officer": {"all_cities": False, "integrity": False, "operations": True, "audit": False},
    "integrity_officer": {"all_cities": True, "integrity": True, "operations": False, "audit": False},
}


class AccessDenied(DozorError):
    """A request outside the user's scope; the page shows it and the audit log records it."""


@dataclass(frozen=True)
class Scope:
    """What one user may see. ``cities`` and ``districts`` of None mean all."""

    user: str
    role: str
    cities: frozenset[str] | None
    districts: frozenset[str] | None = None
    integrity: bool = False
    operations: bool = True
    #: May read the audit log (the ministry's analysts).
    audit: bool = False

    def covers_city(self, city_id: str) -> bool:
        return self.operations and (self.cities is None or city_id in self.cities)

    def covers_district(self, city_id: str, district: str) -> bool:
        return self.covers_city(city_id) and (self.districts is None or district in self.districts)

    def require_city(self, city_id: str) -> None:
        if not self.covers_city(city_id):
            raise AccessDenied(f"{self.user} ({self.role}) may not see {city_id!r}")

    def require_district(self, city_id: str, district: str) -> None:
        if not self.covers_district(city_id, district):
            raise AccessDenied(f"{self.user} ({self.role}) may not see district {district!r} of {city_id!r}")

    def require_integrity(self) -> None:
        if not self.integrity:
            raise AccessDenied(f"{self.user} ({self.role}) may not see integrity reports")

    def require_audit(self) -> None:
        if not self.audit:
            raise AccessDenied(f"{self.user} ({self.role}) may not read the audit log")

    def visible_cities(self, ids: Iterable[str] = CITY_IDS) -> list[str]:
        return sorted(c for c in ids if self.covers_city(c))


#: The signed-out wall screen on an allowed address (DOZOR_KIOSK_ADDRESSES): every city's live
#: operational figures, nothing else (no integrity reports, no manager pages).
KIOSK = Scope("kiosk", "kiosk", None)


class AccessPolicy:
    """The access file, read once: user or group → :class:`Scope`."""

    def __init__(self, assignments: list[dict], source: str) -> None:
        self._by_user: dict[str, dict] = {}
        self._by_group: dict[str, dict] = {}
        for i, a in enumerate(assignments):
            where = f"{source}: [[assign]] #{i + 1}"
            role = a.get("role")
            if role not in ROLES:
                raise ConfigError(f"{where}: role must be one of {', '.join(ROLES)}, not {role!r}")
            cities = a.get("cities", "*" if ROLES[role]["all_cities"] else None)
            if cities is None:
                raise ConfigError(f"{where}: role {role} needs cities = [...]")
            if cities != "*":
                unknown = set(cities) - CITY_IDS
                if unknown:
                    raise ConfigError(f"{where}: unknown cities {sorted(unknown)}")
            districts = a.get("districts")
            if districts is not None:
                if cities == "*" or len(cities) != 1:
                    raise ConfigError(f"{where}: districts need exactly one city")
                known = city(cities[0]).district_ids
                if set(districts) - known:
                    raise ConfigError(f"{where}: unknown districts {sorted(set(districts) - known)}")
            key = a.get("user") or a.get("group")
            if not key:
                raise ConfigError(f"{where}: needs user = ... or group = ...")
            (self._by_user if "user" in a else self._by_group)[key.lower()] = {
                "role": role, "cities": cities, "districts": districts,
            }  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> AccessPolicy:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read the access file {path} (DOZOR_ACCESS_FILE): {e}") from None
        return cls(raw.get("assign", []), str(path))

    def scope_for(self, user: str, groups: Iterable[str] = ()) -> Scope | None:
        """The scope of ``user`` (an e-mail or subject), by their own entry first, else their
        first group that has one; None if the file names neither."""
        entry = self._by_user.get(user.lower()) or next(
            (self._by_group[g.lower()] for g in groups if g.lower() in self._by_group), None
        )
        if entry is None:
            return None
        role = ROLES[entry["role"]]
        cities = None if entry["cities"] == "*" else frozenset(entry["cities"])
        districts = None if entry["districts"] is None else frozenset(entry["districts"])
        return Scope(
            user, entry["role"], cities, districts, role["integrity"], role["operations"], role["audit"]
        )
