"""One typed settings object for every process, read from SERVICECAST_* variables."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from standardwebhooks import Webhook

from fleet.redaction import redact_url

ENV_PREFIX = "SERVICECAST_"
DEFAULT_DATABASE_URL = "sqlite:///var/servicecast.db"
MAX_DAYS = 36_525  # a century: more days than this before now fall out of the calendar (1e9 days)
PARTITION_LOCK_TIMEOUT_S = 5.0  # the default of `partition_lock_timeout_s`, for callers without settings
SECRET_FIELDS = frozenset(
    {"mqtt_url", "database_url", "smtp_url", "webhook_url", "archive_url", "erasure_ledger_copy"}
)
HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*")


class MqttEndpoint:
    """A parsed `mqtt://[user:pass@]host:port` or `mqtts://…` URL."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"scheme must be mqtt:// or mqtts://, got {parts.scheme or 'none'}://")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            # Else the host is read from the password: paho would connect to another host.
            raise ValueError(
                "has something after host:port; a / ? or # in the user name or password must be "
                "percent-encoded (%2F %3F %23)"
            )
        if not parts.hostname:
            raise ValueError("no host in MQTT URL")
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in MQTT URL: {exc}") from None
        self.port = port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None


class Settings(BaseSettings):
    """Effective configuration; validated once at start-up."""

    # inf and nan would reach timedeltas: an OverflowError in `retention run` or at ingest start.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", allow_inf_nan=False)

    log_level: str = "INFO"
    # The folder relative paths of the database and archive are read against, once at start; unset: the
    # directory the process started in. Without it, a command started elsewhere opened another database.
    home: Path | None = None
    database_url: str = DEFAULT_DATABASE_URL
    database_busy_timeout_ms: int = Field(default=5000, ge=0)
    # TCP keepalives of PostgreSQL connections (libpq's keepalives_*; the URL's own win): a connection that
    # a NAT or firewall dropped fails after idle + interval × count seconds instead of the kernel's hours.
    database_keepalive_idle_s: int = Field(default=60, ge=1)
    database_keepalive_interval_s: int = Field(default=10, ge=1)
    database_keepalive_count: int = Field(default=6, ge=1)
    mqtt_url: SecretStr | None = None
    mqtt_protocol: str = "5"
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    mqtt_session_expiry_s: int = Field(default=3600, ge=0)
    ingest_client_id: str = "servicecast-ingest"
    ingest_topic: str = "fleet/+/+/+"
    ingest_shared_group: str | None = None
    ingest_auto_register: bool = False
    ingest_batch_size: int = Field(default=500, ge=1, le=10_000)
    ingest_batch_ms: int = Field(default=100, ge=1)
    ingest_queue_size: int = Field(default=2000, ge=10, le=65_535)
    ingest_max_payload_bytes: int = Field(default=65_536, ge=64)
    ingest_queue_bytes: int = Field(default=64 * 2**20, ge=2**16)
    ingest_quarantine_prefix_bytes: int = Field(default=1024, ge=0)
    ingest_max_readings: int = Field(default=256, ge=1)
    ingest_future_margin_s: float = Field(default=300.0, ge=0)
    ingest_ts_floor: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    ingest_retry_max_s: float = Field(default=10.0, gt=0)
    # Parse, check and store in a writer process of its own, so that the receiving process only receives.
    ingest_writer_process: bool = True
    # A Sparkplug host asks one edge node for a rebirth at most once in this time: a node whose every rebirth
    # brings its fault back (a device without DBIRTH, an alias not in the birth) is not asked in a loop.
    sparkplug_rebirth_interval_s: float = Field(default=60.0, ge=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65_535)
    metrics_host: str = "127.0.0.1"
    public_url: str = "http://127.0.0.1:8000"
    console_session_idle_min: int = Field(default=30, ge=1, le=10_080)
    console_session_max_h: int = Field(default=12, ge=1, le=720)
    console_sign_in_max_failures: int = Field(default=5, ge=1, le=1000)
    console_sign_in_window_min: int = Field(default=15, ge=1, le=1440)
    # A machine whose last message arrived longer ago than this is "silent" (judged on arrival time).
    machine_silent_after_min: int = Field(default=30, ge=1, le=100_000)
    # A machine whose last hour brought less than this share of its usual rate is "degraded"; a live one gets
    # a "low data rate" alert (the usual rate: its readings of the day before that hour).
    machine_degraded_below: float = Field(default=0.5, gt=0, lt=1)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65_535)
    api_workers: int = Field(default=1, ge=1, le=64)
    api_docs: Literal["public", "admin", "off"] = "public"
    api_metrics: Literal["public", "admin", "off"] = "public"
    api_telemetry_max_window_days: float = Field(default=31.0, gt=0, le=3660)
    api_telemetry_max_points: int = Field(default=5000, ge=10, le=100_000)
    api_telemetry_concurrency: int = Field(default=1, ge=1, le=64)
    api_page_cache_bytes: int = Field(default=32 * 2**20, ge=0)
    api_key_cache_bytes: int = Field(default=8 * 2**20, ge=0)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    smtp_url: str | None = None
    mail_from: str = "servicecast@localhost"
    mail_to: str | None = None
    route_max_attempts: int = Field(default=8, ge=1, le=50)
    route_backoff_base_s: float = Field(default=1.0, gt=0)
    route_backoff_max_s: float = Field(default=300.0, gt=0)
    route_timeout_s: float = Field(default=10.0, gt=0)
    # Notification webhooks go to public addresses only, unless the host or its network is named here.
    webhook_allow_networks: Annotated[tuple[str, ...], NoDecode] = ()
    alert_escalate_after_min: int = Field(default=60, ge=1, le=MAX_DAYS * 1440)
    # Training: the alert threshold is the lowest whose training-window alerts reach this precision.
    model_precision_target: float = Field(default=0.85, gt=0, le=1)
    # ... and open at most this many false training alerts per machine-month (else the best F1 is taken).
    model_max_false_alarms: float = Field(default=0.08, ge=0)
    # Champion/challenger: the candidate is compared with the active version on the last days held out.
    train_holdout_days: float = Field(default=7.0, ge=0, le=MAX_DAYS)  # 0: no window held out, no comparison
    # Training memory grows with a type's rows: above this many, a seeded sample of whole machines trains.
    train_max_rows: int = Field(default=500_000, ge=10_000)
    # Cold start: a type's supervised model takes over once it has this many failure labels.
    cold_start_min_failures: int = Field(default=5, ge=1)
    offers_per_account_per_week: int = Field(default=3, ge=0)
    # Inbound CRM outcomes (api/routers/crm.py): Standard Webhooks secret and how old a delivery may be.
    crm_inbound_secret: SecretStr | None = None
    crm_replay_window_s: int = Field(default=300, ge=1, le=86_400)
    demo_machines: int = Field(default=200, ge=1, le=5000)
    demo_days: float = Field(default=30.0, gt=0, le=365)
    demo_step_s: int = Field(default=3600, ge=60, le=86_400)
    demo_live_hours: float = Field(default=6.0, gt=0, le=720)
    # Data lifecycle (fleet/archive.py, fleet/retention.py): telemetry older than hot_days moves to Parquet.
    hot_days: float = Field(default=14.0, gt=0, le=MAX_DAYS)
    # A folder, file://, or an fsspec URL whose package is installed (s3://bucket/prefix needs s3fs). memory://
    # passes here but an archive run refuses it: its files would end with the process.
    archive_url: str = "var/archive"
    # A second erasure ledger (fleet/erasure_ledger.py), a folder or a URL as the archive takes, kept out of
    # the backups of the database and the archive: erasures outlive restoring both from one old backup.
    erasure_ledger_copy: str | None = None
    # PostgreSQL: how long an archive or retention run's partition DDL waits for a table a writer or reader
    # holds before it leaves that week to a later run (meanwhile later readers and writers queue behind it).
    partition_lock_timeout_s: float = Field(default=PARTITION_LOCK_TIMEOUT_S, ge=0.1, le=600)
    # A long step of a command (a rollup refresh) says how far it got on stderr once it has run this long,
    # then at most this often; 0: after every batch.
    progress_every_s: float = Field(default=5.0, ge=0, le=3600)
    # Retention per data class in days; None keeps forever. Audit lines are kept at least audit_floor_days.
    retain_archive_days: float | None = Field(default=None, gt=0, le=MAX_DAYS)
    retain_rollup_minute_days: float | None = Field(default=30.0, gt=0, le=MAX_DAYS)
    retain_rollup_hour_days: float | None = Field(default=730.0, gt=0, le=MAX_DAYS)
    retain_rollup_day_days: float | None = Field(default=None, gt=0, le=MAX_DAYS)
    retain_quarantine_days: float | None = Field(default=90.0, gt=0, le=MAX_DAYS)
    retain_predictions_days: float | None = Field(default=365.0, gt=0, le=MAX_DAYS)
    # The workflow events are the audit trail.
    retain_audit_days: float | None = Field(default=None, gt=0, le=MAX_DAYS)
    audit_floor_days: float = Field(default=3650.0, gt=0, le=MAX_DAYS)

    @field_validator("home")
    @classmethod
    def _home(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"must be an absolute folder, got {str(value)!r}")
        return value

    @model_validator(mode="after")
    def _fix_relative_paths(self) -> Settings:
        base = self.home or Path.cwd()
        # Through __dict__: the demo tells a database it was given from its own by `model_fields_set`.
        self.__dict__["database_url"] = sqlite_url_from(base, self.database_url)
        for name in ("archive_url", "erasure_ledger_copy"):
            url = getattr(self, name)
            if url and "://" not in url and not Path(url).is_absolute():
                self.__dict__[name] = str(base / url)
        return self

    @field_validator("demo_step_s")
    @classmethod
    def _demo_step_s(cls, value: int) -> int:
        if 86_400 % value:
            raise ValueError("must divide a day (86,400 s), e.g. 600, 900, 3600")
        return value

    @field_validator("ingest_topic")
    @classmethod
    def _ingest_topic(cls, value: str) -> str:
        return check_topic_filter(value)

    @field_validator("ingest_shared_group")
    @classmethod
    def _ingest_shared_group(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return value
        _check_share_name(value)
        topic = str(info.data.get("ingest_topic", ""))
        if topic.startswith(SHARE_PREFIX):
            raise ValueError("SERVICECAST_INGEST_TOPIC is a shared subscription already: set one of the two")
        check_topic_filter(f"{SHARE_PREFIX}{value}/{topic}")  # the length of the whole
        return value

    @field_validator("ingest_ts_floor")
    @classmethod
    def _ingest_ts_floor(cls, value: datetime) -> datetime:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a SQLAlchemy URL for sqlite:/// or postgresql+psycopg://")
        check_database_url(value)
        return value

    @field_validator("archive_url")
    @classmethod
    def _archive_url(cls, value: str, info: ValidationInfo) -> str:
        check_archive_url(value, base=info.data.get("home") or Path.cwd())
        return value

    @field_validator("erasure_ledger_copy")
    @classmethod
    def _erasure_ledger_copy(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        base = info.data.get("home") or Path.cwd()
        check_archive_url(value, base=base, what="the erasure ledger's copy")
        if value.startswith("memory://"):
            raise ValueError(
                "memory:// keeps files in each process's memory only, and a copy there tells nothing"
            )
        if "archive_url" in info.data:  # else that one is reported
            _check_outside(value, info.data["archive_url"], base=base)
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            MqttEndpoint(value.get_secret_value())
            return value
        return None

    @field_validator("webhook_secret", "crm_inbound_secret")
    @classmethod
    def _signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            Webhook(value.get_secret_value())
        except Exception:  # noqa: BLE001 - the library raises binascii.Error, ValueError, …
            raise ValueError("must be whsec_ followed by base64") from None
        return value

    @field_validator("webhook_allow_networks", mode="before")
    @classmethod
    def _webhook_allow_networks(cls, value: object) -> tuple[str, ...]:
        entries = value.split(",") if isinstance(value, str) else value
        allowed = tuple(str(e).strip().lower().rstrip(".") for e in entries if str(e).strip())  # type: ignore[union-attr]
        for entry in allowed:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not HOST_NAME.fullmatch(entry):
                    raise ValueError(f"not a network (10.0.0.0/8) or host name: {entry!r}") from None
        return allowed

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("mqtt_protocol")
    @classmethod
    def _mqtt_protocol(cls, value: str) -> str:
        aliases = {"5": "5", "5.0": "5", "mqttv5": "5", "3.1.1": "3.1.1", "311": "3.1.1", "mqttv311": "3.1.1"}
        if value.lower() not in aliases:
            raise ValueError("must be 5 or 3.1.1")
        return aliases[value.lower()]

    def mqtt_endpoint(self) -> MqttEndpoint | None:
        """The broker to use, or None when the demo should start its embedded one."""
        return MqttEndpoint(self.mqtt_url.get_secret_value()) if self.mqtt_url else None

    def subscription(self) -> str:
        """The topic filter, as a shared subscription when a group is set."""
        if self.ingest_shared_group:
            return f"$share/{self.ingest_shared_group}/{self.ingest_topic}"
        return self.ingest_topic

    def redacted(self) -> dict[str, object]:
        """Settings as printable values: secrets masked, URLs as `redact_url` shows them."""
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value() if name in SECRET_FIELDS else "***"
            if name in SECRET_FIELDS and isinstance(value, str):
                value = redact_url(value)
            out[f"SERVICECAST_{name.upper()}"] = value
        return out


SHARE_PREFIX = "$share/"
MAX_TOPIC_BYTES = 65_535


def check_topic_filter(value: str) -> str:
    """`value` if it is an MQTT topic filter (MQTT 3.1.1 and 5 section 4.7, shared ones 5 section 4.8.2),
    else ValueError saying what is wrong. paho checks filters only in `subscribe`, with a private helper."""
    if not value:
        raise ValueError("must not be empty (a topic filter, e.g. fleet/+/+/telemetry)")
    if len(value.encode()) > MAX_TOPIC_BYTES:
        raise ValueError(f"is longer than {MAX_TOPIC_BYTES:,} bytes")
    if "\0" in value:
        raise ValueError(f"must not contain the null character, got {value!r}")
    topic = value
    if value.startswith(SHARE_PREFIX):
        _, group, topic = (*value.split("/", 2), "")[:3]
        if not group or not topic:
            raise ValueError(f"a shared subscription is $share/<group>/<filter>, got {value!r}")
        _check_share_name(group)
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"'#' must be a whole level and the last one (as in fleet/#), got {value!r}")
        if "+" in level and level != "+":
            raise ValueError(f"'+' must be a whole level (as in fleet/+/+/telemetry), got {value!r}")
    return value


def _check_share_name(group: str) -> None:
    if any(c in group for c in "/+#"):
        raise ValueError(f"a shared subscription's group has no / + #, got {group!r}")


def check_database_url(url: str) -> None:
    """ValueError unless SQLAlchemy reads `url` as written and has its driver; the text never repeats it."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError("is not a SQLAlchemy URL (dialect+driver://user:password@host/database)") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError(
            "names no database file (sqlite:///var/servicecast.db): in memory, each process would have "
            "its own empty store, gone when it exits"
        )
    if parsed.host and "@" in parsed.host:
        # SQLAlchemy ends the password at its first @: the rest would be taken for the host.
        raise ValueError("has an @ in its user name or password: write it percent-encoded, as %40")
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise ValueError(f"names no SQLAlchemy dialect: {parsed.drivername}") from None
    except ImportError:
        raise ValueError(
            f"needs the driver {parsed.get_driver_name()}, which is not installed; "
            "servicecast ships sqlite:/// and postgresql+psycopg://"
        ) from None


def check_archive_url(url: str, *, base: Path, what: str = "the archive") -> None:
    """ValueError unless `archive.location` can open `url` (`what`): a path (read against `base`) that is
    a folder or can be made one, or an fsspec URL (chained by ::) whose every scheme's filesystem imports."""
    if "://" not in url or url.startswith("file://"):
        _check_folder(base / url.removeprefix("file://"), what=what)
        return
    import fsspec  # here: most processes that load settings never touch the archive

    for scheme in (part.split("://", 1)[0] for part in url.split("::")):
        try:
            fsspec.get_filesystem_class(scheme)
        except (ImportError, ValueError) as exc:
            raise ValueError(  # not the URL: it may hold a storage key
                f"cannot use the scheme {scheme}:// ({exc}); {what} takes a folder, file:// or an "
                "fsspec URL whose package is installed (s3:// needs s3fs, gs:// gcsfs, abfs:// adlfs)"
            ) from None


def _check_folder(path: Path, *, what: str) -> None:
    """ValueError when `path`, or the nearest of its parents that exists, is not a folder: a file there would
    fail every archive write, and every read as a damaged archive month."""
    for at in [path, *path.parents]:
        if at.exists():
            if not at.is_dir():
                raise ValueError(f"{at} is not a folder; {what} must be a folder")
            return


def _check_outside(copy: str, archive_url: str, *, base: Path) -> None:
    """ValueError when the erasure ledger's copy is the archive or lies in it: a restore of the archive would
    put the copy back with it, and then it would tell nothing."""
    inner, outer = (_where(url, base) for url in (copy, archive_url))
    if inner == outer or inner.startswith(outer.rstrip("/") + "/"):
        raise ValueError(
            f"is the archive or a folder in it ({redact_url(archive_url)}): keep it outside the backups of "
            "the archive and the database, or a restore puts it back with them"
        )


def _where(url: str, base: Path) -> str:
    """`url` as a comparable place: a local path resolved against `base`, any other URL as it is."""
    if "://" not in url or url.startswith("file://"):
        return str((base / url.removeprefix("file://")).resolve())
    return url.rstrip("/")


def sqlite_url_from(base: Path, url: str) -> str:
    """`url` with a relative SQLite file path read against `base`; any other URL as it is."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return url
    if Path(path).is_absolute():
        return url
    return parsed.set(database=str(base / path)).render_as_string(hide_password=False)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the environment."""
    return Settings()


EXIT_BAD_SETTING = 2


def env_name(field: str) -> str:
    """The variable that sets the `Settings` field `field`, as messages name it; KeyError if none does."""
    if field not in Settings.model_fields:
        raise KeyError(f"no setting {field!r}")
    return ENV_PREFIX + field.upper()


def describe_error(exc: ValidationError) -> str:
    """One line naming the first bad variable and what is wrong with it."""
    first = exc.errors()[0]
    name = ENV_PREFIX + str(first["loc"][0]).upper() if first["loc"] else ENV_PREFIX + "*"
    return f"invalid setting {name}: {first['msg'].removeprefix('Value error, ')}"
