"""Settings: one table, read from `CSMS_*` environment variables and matching `csms serve` flags.

One declarative table keeps the environment, the command line, the README and the Helm chart in step: a test
checks that every variable the chart sets is a name in `SETTINGS`.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ocpp.v16.enums import RegistrationStatus


class ConfigError(Exception):
    """A setting that cannot be used; the message is the one line an operator sees."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be zero or a positive integer")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number 0-65535")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must be zero or a positive number")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return raw

    return parse


def _nats_name(raw: str) -> str:
    if not raw or not all(c.isalnum() or c in "_-" for c in raw):
        raise ValueError("must be letters, digits, '_' or '-' (a NATS name or subject token)")
    return raw


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


OCPP_SUBPROTOCOLS = ("ocpp2.0.1", "ocpp1.6")


def _ocpp_versions(raw: str) -> tuple[str, ...]:
    versions = _csv(raw)
    unknown = [v for v in versions if v not in OCPP_SUBPROTOCOLS]
    if not versions or unknown or len(set(versions)) != len(versions):
        raise ValueError(f"must list distinct subprotocols of {', '.join(OCPP_SUBPROTOCOLS)}, most preferred first")
    return versions


def _path_prefix(raw: str) -> str:
    if not raw.startswith("/"):
        raise ValueError("must start with /")
    return raw if raw.endswith("/") else raw + "/"


def _database_url(raw: str) -> str:
    if raw and not re.match(r"^postgres(ql)?://", raw):
        raise ValueError("must be a postgresql:// URL")
    return raw


def _public_url(raw: str) -> str:
    if raw and not (raw.startswith("wss://") and len(raw) > len("wss://")):
        raise ValueError("must be a wss:// URL (the address stations connect to), or empty")
    return raw


# URL schemes pyarrow.fs.FileSystem.from_uri opens (checked here by name: opening an s3:// one at startup could
# block on the network resolving its region).
ARCHIVE_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")


def _archive_url(raw: str) -> str:
    scheme, separator, rest = raw.partition("://")
    if separator and (scheme not in ARCHIVE_SCHEMES or not rest.strip("/")):
        raise ValueError(
            f"must be a directory or a URL pyarrow opens ({', '.join(s + '://' for s in ARCHIVE_SCHEMES)})"
        )
    return raw


def _cidrs(raw: str) -> tuple[str, ...]:
    cidrs = _csv(raw)
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IP network in CIDR notation") from None
    return cidrs


ROLES = ("read", "operator", "admin")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


@dataclass(frozen=True)
class ApiToken:
    """One CSMS_API_TOKENS entry, TOKEN[:ROLE[:NAME]]. The name is who the audit trail records; an unnamed token
    is called token-<first 8 hex of its SHA-256>: stable on every replica, and it does not reveal the token."""

    secret: str
    role: str
    name: str


def parse_api_token(spec: str) -> ApiToken:
    secret, _, rest = spec.partition(":")
    role, _, name = rest.partition(":")
    if len(secret) < 8:
        raise ValueError("each token must be at least 8 characters")
    if role and role not in ROLES:
        raise ValueError(f"unknown role {role!r} (read, operator or admin)")
    if name and not _TOKEN_NAME.match(name):
        raise ValueError(f"token name {name!r} must be 1-64 of A-Z a-z 0-9 . _ @ -")
    return ApiToken(secret, role or "admin", name or f"token-{hashlib.sha256(secret.encode()).hexdigest()[:8]}")


def _api_tokens(raw: str) -> tuple[str, ...]:
    tokens = _csv(raw)
    names = [parse_api_token(token).name for token in tokens]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"token names must be unique: {', '.join(duplicates)} used more than once")
    return tokens


@dataclass(frozen=True)
class Setting:
    name: str  # attribute name; the variable is CSMS_<NAME> and the flag --<name-with-dashes>
    parse: Callable[[str], Any]
    default: str
    help: str
    secret: bool = False

    @property
    def env(self) -> str:
        return "CSMS_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", _database_url, "", "Postgres URL (postgresql://user:pass@host:5432/db)", secret=True),
    Setting("bind", str, "0.0.0.0", "address the OCPP and API servers listen on"),
    Setting("ocpp_port", _port, "9000", "OCPP WebSocket port"),
    Setting("api_port", _port, "8080", "REST API, health and metrics port"),
    Setting(
        "ocpp_versions",
        _ocpp_versions,
        "ocpp2.0.1,ocpp1.6",
        "OCPP subprotocols offered, most preferred first (the first one a station also offers is used)",
    ),
    Setting("ocpp_path_prefix", _path_prefix, "/ocpp/", "URL path under which stations connect (id appended)"),
    Setting("node_id", str, "", "this replica's id (default: hostname-pid)"),
    Setting("advertise_address", str, "", "internal http://host:port other replicas use to reach this API"),
    Setting(
        "api_tokens",
        _api_tokens,
        "",
        "comma-separated bearer tokens, each TOKEN, TOKEN:ROLE or TOKEN:ROLE:NAME",
        secret=True,
    ),
    Setting("internal_secret", str, "", "shared secret authenticating replica-to-replica calls", secret=True),
    Setting(
        "registration",
        _choice("known", "auto"),
        "known",
        "unknown stations: refused (404) or auto-registered",
    ),
    Setting(
        "boot_status",
        _choice(*(s.value for s in RegistrationStatus)),
        "Accepted",
        "default BootNotification answer",
    ),
    Setting(
        "reclaim_trigger",
        _choice("status", "boot", "both", "none"),
        "both",
        "asked of a station that reconnects without booting: per-connector status, a boot, both or none",
    ),
    Setting("heartbeat_interval", _positive_int, "300", "heartbeat interval (s) given in BootNotification.conf"),
    Setting("ping_interval", _non_negative_float, "30", "WebSocket ping interval (s); 0 disables"),
    Setting("ping_timeout", _positive_float, "20", "close a station whose pong is this late (s)"),
    Setting("call_timeout", _positive_float, "30", "timeout (s) for a CSMS-to-station call"),
    Setting("max_frame_bytes", _positive_int, "65536", "largest OCPP frame accepted (bytes)"),
    Setting(
        "max_concurrent_handshakes",
        _positive_int,
        "1000",
        "handshakes checked at once; more wait up to 2 s, then get 503 + Retry-After before the upgrade",
    ),
    Setting("id_tag_cache_seconds", _non_negative_float, "5", "how long a replica caches id-tag lookups (0: never)"),
    Setting("password_iterations", _positive_int, "20000", "PBKDF2 iterations for new station password hashes"),
    Setting(
        "auth_failures_per_minute",
        _non_negative_float,
        "10",
        "failed station passwords allowed per station id a minute, then 429 before hashing (0: no limit)",
    ),
    Setting(
        "auth_source_failures_per_minute",
        _non_negative_float,
        "60",
        "failed station passwords allowed per source address (TCP peer) a minute (0: no limit)",
    ),
    Setting("auth_max_concurrent_hashes", _positive_int, "2", "password verifications (PBKDF2) run at once"),
    Setting(
        "auth_max_queued_hashes",
        _non_negative_int,
        "256",
        "password verifications that may wait; more are refused at once with 503",
    ),
    Setting("db_pool_size", _positive_int, "20", "Postgres connections per replica for reads (opened as needed)"),
    Setting("group_commit", _bool, "true", "batch hot-path writes of many stations into one transaction"),
    Setting("group_commit_max_batch", _positive_int, "256", "most writes in one group commit"),
    Setting(
        "db_writers",
        _positive_int,
        "4",
        "group commits in flight at once, each on its own Postgres connection (besides the pool)",
    ),
    Setting(
        "group_commit_max_wait_ms",
        _non_negative_float,
        "2",
        "longest a batch waits for more writes when all other writers are busy (ms; else it goes at once)",
    ),
    Setting("etcd_endpoints", _csv, "", "comma-separated etcd URLs; unset runs a single node without etcd"),
    Setting("etcd_prefix", _path_prefix, "/csms/", "etcd key prefix"),
    Setting("etcd_username", str, "", "etcd user"),
    Setting("etcd_password", str, "", "etcd password", secret=True),
    Setting("etcd_ca_file", str, "", "CA bundle for https etcd endpoints"),
    Setting("lease_ttl", _positive_float, "10", "node lease TTL (s); kept alive every TTL/3"),
    Setting("drain_timeout", _positive_float, "30", "longest a SIGTERM drain takes before exit (s)"),
    Setting("drain_rate", _positive_float, "200", "stations closed per second while draining"),
    Setting(
        "slow_step_seconds",
        _non_negative_float,
        "0.1",
        "report a task step that holds the event loop this long or longer (metric and a rate-limited log line);"
        " 0 turns it off",
    ),
    Setting(
        "abandoned_transaction_hours",
        _non_negative_float,
        "72",
        "the leader closes transactions silent this long as Abandoned (0: never)",
    ),
    Setting("rebalance_tolerance", _non_negative_float, "0.1", "allowed deviation from an even spread"),
    Setting("rebalance_interval", _positive_float, "10", "seconds between the leader's rebalancing rounds"),
    Setting(
        "rebalance_active_tx_imbalance",
        _non_negative_float,
        "1.0",
        "rebalancing sheds stations with an open transaction only from replicas above their fair share by more "
        "than this fraction (and only for that part of the excess)",
    ),
    Setting(
        "rebalance_station_cooldown",
        _non_negative_float,
        "300",
        "rebalancing never disconnects a station connected for less than this many seconds",
    ),
    Setting(
        "site_interval",
        _positive_float,
        "5",
        "seconds between a site's load-management rounds when no session starts or stops (usage and schedule)",
    ),
    Setting(
        "console_session_minutes",
        _positive_float,
        "480",
        "how long an operator console sign-in lasts before the token is asked again (minutes)",
    ),
    Setting(
        "console_secret",
        str,
        "",
        "key signing console sessions (unset: derived from the API tokens and internal secret)",
        secret=True,
    ),
    Setting("export_source", str, "urn:csms", "CloudEvents 'source' of every exported event (this installation)"),
    Setting("export_nats_url", str, "", "NATS server for the JetStream exporter, nats://host:4222 (unset: off)"),
    Setting("export_nats_stream", _nats_name, "CSMS_EVENTS", "JetStream stream the exporter publishes to"),
    Setting("export_nats_subject_prefix", _nats_name, "csms", "subjects are <prefix>.<event type>.<station>"),
    Setting("export_webhook_url", str, "", "endpoint the webhook exporter POSTs event batches to (unset: off)"),
    Setting("export_webhook_secret", str, "", "HMAC-SHA256 key signing webhook requests", secret=True),
    Setting("export_webhook_attempts", _positive_int, "5", "webhook attempts per batch before dead-lettering"),
    Setting("export_webhook_batch", _positive_int, "100", "most events in one webhook request"),
    Setting("export_batch", _positive_int, "500", "most events an exporter reads and publishes at once"),
    Setting("export_poll_ms", _positive_float, "100", "how often an idle exporter looks for new events (ms)"),
    Setting(
        "retention_outbox_hours",
        _positive_float,
        "168",
        "outbox partitions older than this are dropped once every exporter has passed them",
    ),
    Setting(
        "retention_meter_values_days",
        _non_negative_float,
        "0",
        "meter-value months older than this many days are dropped (archived first if an archive is set; 0: keep)",
    ),
    Setting(
        "retention_archive_url",
        _archive_url,
        "",
        "directory or URL (file://, s3://, gs://...) where dropped meter-value partitions are kept as Parquet",
    ),
    Setting("tls_cert_file", str, "", "certificate for wss:// (unset: plain ws)"),
    Setting("tls_key_file", str, "", "private key for wss://"),
    Setting(
        "ocpp_public_url",
        _public_url,
        "",
        "wss:// address stations reach the CSMS at (2.0.1 SetNetworkProfile when a station's profile is raised)",
    ),
    Setting(
        "tls_client_ca_file",
        str,
        "",
        "CA bundle for station certificates (security profile 3), in-replica TLS and forwarded by a trusted proxy",
    ),
    Setting(
        "tls_station_identity",
        _choice("cn", "san"),
        "cn",
        "where a station certificate names the station: subject CN (OCPP) or a SAN DNS/URI entry",
    ),
    Setting(
        "tls_reload_seconds",
        _positive_float,
        "10",
        "how often certificate files are checked for renewal (s); new handshakes use the new ones",
    ),
    Setting("ca_cert_file", str, "", "built-in CA certificate signing station CSRs (unset: external CA via the API)"),
    Setting("ca_key_file", str, "", "built-in CA private key (a mounted Secret; never leaves the replica)"),
    Setting("station_certificate_days", _positive_int, "365", "validity of station certificates the built-in CA signs"),
    Setting(
        "certificate_expiry_warning_days",
        _positive_int,
        "30",
        "station certificates expiring within this many days are counted in csms_station_certificates_expiring",
    ),
    Setting(
        "trusted_proxies",
        _cidrs,
        "",
        "CIDRs of TLS-terminating proxies whose X-Forwarded-Proto and client-certificate headers are believed",
    ),
    Setting("log_level", _choice("debug", "info", "warning", "error"), "info", "log level"),
    Setting("log_format", _choice("json", "text"), "json", "structured JSON lines or text for local use"),
)


@dataclass(frozen=True)
class Config:
    """The parsed settings; attribute names match `SETTINGS`."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> Config:
        return Config({**self.values, **changes})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for setting in SETTINGS:
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            default=None,
            help=f"{setting.help} [{setting.env}, default {setting.default or 'unset'}]",
        )


def load(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Flags beat environment beats defaults; raises ConfigError naming the setting."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = getattr(args, setting.name, None) if args is not None else None
        source = setting.flag
        if raw is None:
            raw, source = env.get(setting.env), setting.env
        if raw is None:
            raw, source = setting.default, setting.env
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "***" if setting.secret else repr(raw)
            raise ConfigError(f"{source}={shown}: {exc}") from None
    if not values["node_id"]:
        values["node_id"] = f"{socket.gethostname()}-{os.getpid()}"
    if bool(values["tls_cert_file"]) != bool(values["tls_key_file"]):
        raise ConfigError("CSMS_TLS_CERT_FILE and CSMS_TLS_KEY_FILE must be set together")
    if values["etcd_endpoints"] and not values["internal_secret"]:
        raise ConfigError(
            "CSMS_INTERNAL_SECRET must be set when CSMS_ETCD_ENDPOINTS is (replicas forward commands with it)"
        )
    if bool(values["ca_cert_file"]) != bool(values["ca_key_file"]):
        raise ConfigError("CSMS_CA_CERT_FILE and CSMS_CA_KEY_FILE must be set together")
    if values["tls_client_ca_file"] and not (values["tls_cert_file"] or values["trusted_proxies"]):
        raise ConfigError(
            "CSMS_TLS_CLIENT_CA_FILE needs CSMS_TLS_CERT_FILE (TLS here) or CSMS_TRUSTED_PROXIES (at a proxy)"
        )
    if values["export_webhook_url"] and not values["export_webhook_secret"]:
        raise ConfigError("CSMS_EXPORT_WEBHOOK_URL needs CSMS_EXPORT_WEBHOOK_SECRET (requests are signed)")
    return Config(values)


def require_database(config: Config) -> None:
    if not config.database_url:
        raise ConfigError("CSMS_DATABASE_URL is not set (or `bash deploy/local/run.sh` for a local cluster)")
