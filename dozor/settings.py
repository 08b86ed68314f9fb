"""The one configuration object of Dozor, read from the environment (prefix ``DOZOR_``) or ``.env``.

Every process (CLI, worker, dashboard, simulator, tests) builds its :class:`Settings` once and
passes it down, so the same variables configure the embedded stack and a production deployment
(``infra/docker-compose.yml`` sets exactly these names).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dozor import names
from dozor.errors import ConfigError
from dozor.schemas import UNIT_ID_PATTERN

__all__ = ["Settings", "DEV_PLATE_SALT"]

#: The salt used when none is configured. Good enough to hash simulated plates on a laptop; a
#: production deployment that still uses it would make plate hashes reversible by dictionary, so
#: :class:`Settings` refuses it there.
DEV_PLATE_SALT = "dozor-development-salt-change-me"


class Settings(BaseSettings):
    """All of Dozor's knobs. Field names map to ``DOZOR_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="DOZOR_", env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    state_dir: Path = Field(
        default=Path(".dozor"),
        description="Where the embedded broker and ClickHouse keep data and logs.",
    )
    log_level: str = "INFO"

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA of the cluster's TLS listeners.")
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = None
    kafka_embedded_admin_password: SecretStr = Field(
        default=SecretStr(""),
        description="With DOZOR_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT, the embedded broker runs a SCRAM "
        "listener with ACLs; this is its super user's password (user 'admin').",
    )
    kafka_controller_port: int = 9093
    kafka_jar_dir: Path | None = Field(
        default=None, description="Jar cache; default ~/.cache/dozor/kafka-<version>."
    )
    topic_prefix: str = "dozor"
    topic_partitions: int = Field(default=6, ge=1, le=10_000)
    topic_replication_factor: int = Field(default=1, ge=1, le=32)
    topic_retention_days: float = Field(
        default=7.0, gt=0, description="How long input topics keep messages (retention.ms)."
    )
    derived_topic_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="How long output topics (response times, alerts, city figures) and the dead-letter "
        "topic keep messages: long enough to rebuild a downstream consumer or inspect a rejection.",
    )

    # ClickHouse
    clickhouse_url: str = "http://127.0.0.1:8123"
    clickhouse_database: str = "dozor"
    clickhouse_user: str = Field(
        default="default", description="The writer: workers and migrations insert and change the schema."
    )
    clickhouse_password: SecretStr = SecretStr("")
    clickhouse_reader_user: str = Field(
        default="dozor_reader", description="The reader: the dashboard; SELECT on Dozor's tables only."
    )
    clickhouse_reader_password: SecretStr = SecretStr("")
    retention_audit_days: int = Field(
        default=400, ge=366, description="Days the dashboard's audit log stays (TTL); at least a year."
    )
    clickhouse_max_body_mb: int = Field(
        default=512, ge=1, description="Largest request body the embedded endpoint accepts."
    )
    chdb_handles: int = Field(
        default=4, ge=1, le=64, description="Parallel engine handles of the embedded endpoint."
    )
    chdb_reader_queue: int = Field(
        default=32,
        ge=0,
        le=10_000,
        description="Reader (dashboard) requests that may wait for an engine handle of the embedded "
        "endpoint; the next is answered 503 with Retry-After, so slow queries cannot pile up.",
    )
    chdb_socket_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds the embedded endpoint waits on a silent connection (a request trickled "
        "in, an idle keep-alive) before it closes it, as a server's http_receive_timeout.",
    )
    retention_raw_days: int = Field(
        default=3650,
        ge=1,
        description="Days raw events, response times and alerts stay in ClickHouse (TTL on event_time). "
        "Ten years keeps everything the validator accepts (from 2020) and a three-year baseline. An "
        "event older than this is refused as expired (the TTL would delete it as soon as stored); "
        "raise it before a historical import that reaches further back.",
    )
    retention_aggregate_days: int = Field(
        default=3660, ge=1, description="Days the per-minute and per-day roll-ups stay (TTL)."
    )
    retention_integrity_days: int = Field(
        default=3650, ge=1, description="Days integrity reports stay (TTL), at day granularity."
    )

    # Worker
    consumer_group: str = "dozor-ingest"
    batch_max_rows: int = Field(default=50_000, ge=1, le=1_000_000)
    batch_max_seconds: float = Field(default=0.5, gt=0, le=60)
    mci_kzt: dict[int, int] = Field(
        default={2024: 3692, 2025: 3932, 2026: 4325},
        description="The monthly calculation index (MCI) in tenge per year; fines are set in MCI. "
        "JSON in the environment, e.g. DOZOR_MCI_KZT='{\"2027\": 4600}' (a year missing uses the "
        "latest earlier year).",
    )
    worker_web_port: int = Field(default=6066, ge=1, le=65535)
    arrival_target_minutes: dict[int, int] = Field(
        default={1: 10, 2: 20, 3: 40, 4: 60},
        description="Minutes from an incident's opening to the first unit on scene, per priority; "
        "past it, the incident is flagged (alerts topic) and counted as late. JSON in the environment.",
    )

    earliest_event_date: dt.date = Field(
        default=dt.date(2020, 1, 1),
        description="The oldest event time accepted (UTC day): older events are refused as bad_time, "
        "so a wrong year is caught. Set it earlier, for the workers and `dozor replay` alike, to "
        "import older history (ClickHouse stores times from 1900).",
    )
    unit_id_pattern: str = Field(
        default=UNIT_ID_PATTERN,
        description="Regular expression a dispatch's unit_id must match: a crew's call sign, never a "
        "person's name or number (dozor/schemas.py explains the default).",
    )

    join_retention_hours: float = Field(
        gt=0,
        default=24.0,
        description="A closed incident leaves the join table once event time passes its newest event "
        "by this much; a dispatch step later than that no longer revises its response times.",
    )

    # City figures and spike alerts (streams/figures.py)
    figures_allowed_lateness_s: float = Field(
        ge=0,
        default=120.0,
        description="A minute is published once the event time read passes its end by this much; "
        "events later than that revise it (revision + 1) and count as late.",
    )
    figures_tick_seconds: float = Field(default=2.0, gt=0, description="How often the figures are checked.")
    figures_idle_flush_seconds: float = Field(
        gt=0,
        default=60.0,
        description="Wall-clock seconds without newer events after which every minute read so far "
        "is published (the feed has stopped; nothing later is coming to push the watermark).",
    )
    figures_horizon_hours: float = Field(
        gt=0,
        default=6.0,
        description="How far behind the newest event a minute is still revised; older late events "
        "are stored and counted in ClickHouse but not published again.",
    )
    spike_ratio: float = Field(
        default=3.0, ge=1, description="A spike is at least this many times the baseline."
    )
    spike_min_violations: int = Field(
        default=30, ge=1, description="…and at least this many violations a minute,"
    )
    spike_min_incidents: int = Field(default=10, ge=1, description="…or incidents opened a minute,")
    spike_p_value: float = Field(
        gt=0,
        lt=1,
        default=1e-6,
        description="…and this unlikely under a Poisson count with the baseline's mean.",
    )

    # Dashboard
    dashboard_port: int = Field(default=8501, ge=1, le=65535)
    access_file: Path | None = Field(
        default=None,
        description="TOML mapping users and IdP groups to roles and scopes (dozor/access.py); "
        "default infra/access/dev.toml (the demo users), refused in production.",
    )
    kiosk_addresses: str = Field(
        default="127.0.0.1/32,::1/128",
        description="Comma-separated addresses or networks whose browsers may show the wall screen "
        "signed out (the control centre's screens); empty: none. Everything else signs in.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks of the reverse proxies in front of the "
        "dashboard, whose X-Forwarded-For is believed; empty: none — a browser's address is the "
        "connection's, and a request claiming to be forwarded is never a kiosk.",
    )
    session_idle_minutes: float = Field(default=30.0, gt=0, description="Idle sign-ins end after this.")
    oidc_server_metadata_url: str | None = Field(
        default=None,
        description="The identity provider's /.well-known/openid-configuration (Keycloak, AD FS, …); "
        "unset: no sign-in, the wall only as a kiosk. `dozor up` sets it to its local provider.",
    )
    oidc_client_id: str = "dozor-dashboard"
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_cookie_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Signs the sign-in cookie; a random one per start when empty (sign-ins then end "
        "with a restart).",
    )
    oidc_redirect_uri: str | None = Field(
        default=None, description="Default http://localhost:<dashboard port>/oauth2callback."
    )
    oidc_port: int = Field(default=9400, ge=1, le=65535, description="The local provider of `dozor up`.")
    refresh_seconds: float = Field(default=2.0, gt=0)
    stale_after_seconds: float = Field(default=60.0, gt=0)
    display_timezone: str = "Asia/Almaty"

    # Producers
    simulate_rate: float | None = Field(
        default=None,
        gt=0,
        le=100_000,
        description="The simulated live feed's volume, times a real country's (producers/volume.py, the "
        "same model as the simulated history): 1 (the default) is real; a load test sets more. `dozor "
        "up` sets it for the dashboard too, which then marks the wall as simulated (and a load test).",
    )
    up_history_days: int = Field(
        # Two years and a month: "year to date against last year to date" needs all of last year.
        default=760,
        ge=0,
        description="Days of simulated history `dozor up` generates on its first start (an empty "
        "database), so that every managers' page and the wall's 'against yesterday' have content; "
        "0 for none. `dozor backfill --days N` does it by hand.",
    )
    plate_salt: SecretStr = SecretStr(DEV_PLATE_SALT)

    @field_validator("unit_id_pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from None
        return v

    @field_validator("kiosk_addresses", "trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        for item in (n.strip() for n in v.split(",")):
            if not item:
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an address or network (such as 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return v

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(n.strip(), strict=False)
            for n in self.trusted_proxies.split(",")
            if n.strip()
        ]

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as 'Asia/Almaty')") from None
        return v

    @field_validator("mci_kzt", "arrival_target_minutes")
    @classmethod
    def _positive_values(cls, v: dict[int, int]) -> dict[int, int]:
        bad = {k: n for k, n in v.items() if n <= 0}
        if bad:
            raise ValueError(f"values must be positive, got {bad}")
        return v

    @field_validator("arrival_target_minutes")
    @classmethod
    def _every_priority(cls, v: dict[int, int]) -> dict[int, int]:
        if set(v) != {1, 2, 3, 4}:
            raise ValueError(f"needs a target for each priority 1-4, got {sorted(v)}")
        return v

    def retained_since(self, family: str, now: dt.datetime | None = None) -> dt.datetime:
        """Where the retention of ``family``'s table starts: older events would be deleted by its TTL
        as soon as stored, so the validator refuses them as ``expired`` (infra/migrate.py sets the TTLs)."""
        days = {
            "integrity": self.retention_integrity_days,
            "city_figures": self.retention_aggregate_days,
        }.get(family, self.retention_raw_days)
        return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)

    @property
    def earliest_event(self) -> dt.datetime:
        """:attr:`earliest_event_date` as the UTC instant the validator compares with."""
        return dt.datetime.combine(self.earliest_event_date, dt.time(), dt.UTC)

    @cached_property
    def unit_id_re(self) -> re.Pattern[str]:
        """:attr:`unit_id_pattern`, compiled once."""
        return re.compile(self.unit_id_pattern)

    @model_validator(mode="after")
    def _one_retention_story(self) -> Settings:
        """The roll-ups keep at least what the raw tables keep: the managers' pages count days from
        the roll-ups, and a shorter roll-up TTL deleted years whose raw rows were still there (CompStat
        said "nothing in this range" for 2005-2008 after an import that stored them)."""
        if self.retention_aggregate_days < self.retention_raw_days:
            raise ConfigError(
                f"DOZOR_RETENTION_AGGREGATE_DAYS ({self.retention_aggregate_days}) is shorter than "
                f"DOZOR_RETENTION_RAW_DAYS ({self.retention_raw_days}): the roll-ups the managers' pages "
                f"read would delete history the raw tables keep; set it to at least {self.retention_raw_days}"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        salt = self.plate_salt.get_secret_value()
        if salt in ("", DEV_PLATE_SALT):
            raise ConfigError(
                "DOZOR_PLATE_SALT must be set to a secret value in production: an empty or the "
                "development salt would let anyone reverse plate hashes"
            )
        if not self.clickhouse_password.get_secret_value():
            raise ConfigError("DOZOR_CLICKHOUSE_PASSWORD must be set in production: ClickHouse would be open")
        if self.kafka_security_protocol == "PLAINTEXT":
            raise ConfigError(
                "DOZOR_KAFKA_SECURITY_PROTOCOL is PLAINTEXT in production: anyone could send or read "
                "events; use SASL_SSL (or SSL)"
            )
        if self.access_file is None:
            raise ConfigError(
                "DOZOR_ACCESS_FILE must name the production access file: the default holds demo users"
            )
        return self

    def topic(self, family: str) -> str:
        """The input topic of an event family, e.g. ``dozor.incidents.v1`` (schema version in the name)."""
        from dozor.schemas import FAMILIES

        return FAMILIES[family].topic(self.topic_prefix)

    @property
    def topic_violations(self) -> str:
        """Input topic of traffic-camera violations."""
        return self.topic("violations")

    @property
    def topic_deadletter(self) -> str:
        """Where rejected input goes, with its reason."""
        return names.deadletter_topic(self.topic_prefix)

    def streams_app_id(self, role: str) -> str:
        """The faust app id of a worker role: its consumer group and its changelog topics' prefix."""
        return names.app_id(self.consumer_group, role)

    @property
    def topic_join_changelog(self) -> str:
        """The join table's changelog, named as faust names it: ``<app id>-<table>-changelog``."""
        return names.changelog_topic(self.streams_app_id("join"), names.JOIN_TABLE)

    @cached_property
    def clickhouse_host_port(self) -> tuple[str, int]:
        """Host and port parsed from :attr:`clickhouse_url`, for the embedded endpoint to bind."""
        from urllib.parse import urlparse

        u = urlparse(self.clickhouse_url)
        return u.hostname or "127.0.0.1", u.port or (8443 if u.scheme == "https" else 8123)

    @cached_property
    def kafka_host_port(self) -> tuple[str, int]:
        """Host and port of the first bootstrap server, for the embedded broker to bind."""
        first = self.kafka_bootstrap_servers.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port)

    def to_env(self) -> dict[str, str]:
        """These settings as ``DOZOR_*`` variables, to hand the same configuration to a child process."""
        out = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, dict | list):
                value = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()  # complex: JSON
            out[f"DOZOR_{name.upper()}"] = str(value)
        return out

    def streamlit_secrets(self) -> str:
        """The ``[auth]`` table Streamlit's ``st.login`` reads, as TOML (empty without an IdP)."""
        if not self.oidc_server_metadata_url:
            return ""
        import secrets

        cookie = self.oidc_cookie_secret.get_secret_value() or secrets.token_hex(32)
        redirect = self.oidc_redirect_uri or f"http://localhost:{self.dashboard_port}/oauth2callback"
        fields = {
            "redirect_uri": redirect,
            "cookie_secret": cookie,
            "client_id": self.oidc_client_id,
            "client_secret": self.oidc_client_secret.get_secret_value() or "unused",
            "server_metadata_url": self.oidc_server_metadata_url,
        }
        return "[auth]\n" + "".join(f"{k} = {orjson.dumps(v).decode()}\n" for k, v in fields.items())

    def kafka_client_config(self, aiokafka: bool = False) -> dict[str, object]:
        """Security options for every Kafka client: kafka-python's (the default) or, with
        ``aiokafka``, aiokafka's, which takes TLS as an ``ssl_context`` instead of file names."""
        conf: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            conf["sasl_mechanism"] = self.kafka_sasl_mechanism
            conf["sasl_plain_username"] = self.kafka_sasl_username
            conf["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        if "SSL" in self.kafka_security_protocol:
            if aiokafka:
                conf["ssl_context"] = self.kafka_ssl_context()
            else:
                files = {"ssl_cafile": self.kafka_ssl_cafile, "ssl_certfile": self.kafka_ssl_certfile,
                         "ssl_keyfile": self.kafka_ssl_keyfile}  # fmt: skip
                conf.update({k: str(v) for k, v in files.items() if v is not None})
        return conf

    def kafka_ssl_context(self) -> ssl.SSLContext:
        """The TLS context of aiokafka and faust: the cluster's CA, and a client certificate if set."""
        ctx = ssl.create_default_context(cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None)
        if self.kafka_ssl_certfile:
            ctx.load_cert_chain(str(self.kafka_ssl_certfile), str(self.kafka_ssl_keyfile or "") or None)
        return ctx

    def faust_credentials(self) -> object | None:
        """The same security as faust's ``broker_credentials`` (faust does not read the options above)."""
        import faust

        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return None
        ctx = self.kafka_ssl_context() if "SSL" in protocol else None
        if protocol == "SSL":
            return faust.SSLCredentials(ctx)
        return faust.SASLCredentials(
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
            mechanism=self.kafka_sasl_mechanism or "PLAIN",
            ssl_context=ctx,
        )
