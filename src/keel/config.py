"""Settings: built once from ``KEEL_*`` environment variables (and an optional
``.env``), split into sections, validated per environment, then injected.

Nothing here is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVELOPMENT_SECRET_KEY = "keel-development-only-secret-key-do-not-deploy"  # noqa: S105
# Values seen in tutorials and templates; a deployment using one is not secret.
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        DEVELOPMENT_SECRET_KEY,
        "changeme",
        "change-me",
        "changethis",
        "secret",
        "secret-key",
        "secretkey",
        "your-secret-key",
        "supersecret",
        "development",
        "test",
    }
)
MIN_SECRET_KEY_BYTES = 32
DEFAULT_SQLITE_URL = "sqlite:///./keel.db"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"

    @property
    def is_deployed(self) -> bool:
        """Staging and production are held to the strict rules."""
        return self in (Environment.STAGING, Environment.PRODUCTION)


_SECTION_CONFIG = SettingsConfigDict(
    env_prefix="KEEL_",
    env_file=".env",
    env_file_encoding="utf-8",
    extra="ignore",
    case_sensitive=False,
)


def _split_csv(value: object) -> object:
    """Lists come from the environment as comma-separated strings."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class HttpSettings(BaseSettings):
    """How the HTTP server listens and what every request is allowed to do."""

    model_config = _SECTION_CONFIG

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    cors_origins: CsvList = Field(default_factory=list)
    trusted_proxies: CsvList = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    request_timeout_s: float = Field(default=30.0, gt=0)
    # How long a client may take to send its request headers, and then its
    # body (each; past it 408 or a closed connection): slow clients must not
    # hold connections and memory open indefinitely.
    client_timeout_s: float = Field(default=5.0, gt=0)
    # Load shedding: past either bound keel answers 503 + Retry-After at once
    # instead of queueing work it cannot finish in time (health exempt).
    # Requests handled at once:
    max_in_flight: int = Field(default=100, ge=1)
    # Requests that may wait for one of those places, and for how long:
    max_queued: int = Field(default=200, ge=0)
    max_queue_wait_ms: int = Field(default=1000, ge=1)
    # How long the event loop may stay busy without a break (CPU-bound overload):
    max_loop_stall_ms: int = Field(default=250, ge=10)
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    hsts_max_age_s: int = Field(default=0, ge=0)
    # None means "not decided": accepted in development, refused when deployed.
    expose_docs: bool | None = None
    expose_metrics: bool | None = None

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return _split_csv(value)


class DatabaseSettings(BaseSettings):
    """The relational store: SQLite file by default, PostgreSQL when scaled out."""

    model_config = _SECTION_CONFIG

    database_url: SecretStr = SecretStr(DEFAULT_SQLITE_URL)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_pool_timeout_s: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    # PostgreSQL's choice between a plan made once per prepared statement and
    # one made per execution (see keel.core.db).
    db_plan_cache_mode: Literal["force_generic_plan", "auto", "force_custom_plan"] = "force_generic_plan"
    # PostgreSQL workers one long read (search, dashboard) may add to its own
    # process: each is a core taken from every other request.
    db_long_read_parallel_workers: int = Field(default=0, ge=0)
    db_sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0)
    db_echo: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_secret_value().startswith("sqlite")


class RedisSettings(BaseSettings):
    """Redis for shared rate-limit counters, cache and pub/sub between processes."""

    model_config = _SECTION_CONFIG

    redis_url: SecretStr | None = None
    # Namespaces keys and channels, so deployments can share one Redis.
    redis_key_prefix: str = Field(default="keel", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    redis_pool_size: int = Field(default=20, ge=1)
    redis_timeout_s: float = Field(default=1.0, gt=0)


class RateLimitSettings(BaseSettings):
    """Limits per route group, in the `limits` notation ("20/minute")."""

    model_config = _SECTION_CONFIG

    rate_limits: Literal["on", "off"] = "on"
    rate_limit_default: str = "600/minute"
    rate_limit_auth: str = "20/minute"
    # Failed and successful logins per account, whatever address they come from.
    rate_limit_login_account: str = "10/minute"

    @property
    def enabled(self) -> bool:
        return self.rate_limits == "on"


class AuthSettings(BaseSettings):
    """Tokens, password hashing and account activity."""

    model_config = _SECTION_CONFIG

    # Keys that still verify tokens after KEEL_SECRET_KEY was rotated; remove
    # them once every token they signed has expired.
    previous_secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    jwt_issuer: str = "keel"
    jwt_audience: str = "keel-api"
    jwt_leeway_s: int = Field(default=10, ge=0, le=300)
    access_token_ttl_s: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=3600)
    refresh_reuse_grace_s: float = Field(default=10.0, ge=0, le=120)
    # argon2id cost; OWASP's minimum is 19 MiB, 2 passes. Tests lower it.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    max_concurrent_hashes: int = Field(default=4, ge=1)
    activity_write_interval_s: int = Field(default=60, ge=1)
    # Read requests may reuse "is this user active, which role in this org"
    # for this long (cleared at once on changes; see keel.identity.access_cache).
    access_cache_ttl_s: float = Field(default=5.0, ge=0, le=60)
    # The dashboard's "recently active" members: seen within this many seconds.
    active_member_cutoff_s: int = Field(default=15 * 60, ge=60)

    @field_validator("previous_secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        return _split_csv(value)


class ObservabilitySettings(BaseSettings):
    """Logging, metrics and optional OpenTelemetry tracing."""

    model_config = _SECTION_CONFIG

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    otel_enabled: bool = False
    otel_service_name: str = "keel"
    otel_exporter_endpoint: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class WorkerSettings(BaseSettings):
    """The worker: outbox consumers and periodic jobs (in each `keel serve`
    process by default; `keel worker` runs it on its own)."""

    model_config = _SECTION_CONFIG

    # Off where only dedicated `keel worker` processes should do the work.
    worker_in_process: bool = True
    # How often an idle worker looks for due events and jobs.
    worker_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    worker_batch_size: int = Field(default=100, ge=1, le=1000)
    # A claimed event is claimed again by any worker once its lease runs out
    # (its worker was killed): longer than a batch can take to consume.
    worker_lease_s: float = Field(default=30.0, ge=1, le=3600)
    # Processed outbox events are kept this long, then purged.
    retention_outbox_hours: float = Field(default=168.0, gt=0)
    # How often the retention job runs (once per interval across all processes).
    retention_interval_s: float = Field(default=3600.0, ge=1)


class WebhookSettings(BaseSettings):
    """Webhook endpoints and their delivery."""

    model_config = _SECTION_CONFIG

    # Loopback, private, link-local and metadata addresses are refused unless
    # this is on (a receiver on the same machine or network, in tests).
    webhook_allow_private_targets: bool = False
    webhook_max_endpoints_per_org: int = Field(default=20, ge=1, le=1000)
    # Connecting, sending and reading the answer of one attempt.
    webhook_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # Seconds before each retry; after the last, the message is dead-lettered.
    webhook_retry_schedule_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    # How long the previous secret keeps signing after a rotation.
    webhook_secret_overlap_s: float = Field(default=86400.0, ge=0)
    # Delivered deliveries (and their attempts) are kept this long; dead ones until replayed or deleted.
    webhook_retention_hours: float = Field(default=168.0, gt=0)
    # An endpoint whose every attempt has failed for this long is disabled.
    webhook_disable_after_failing_s: float = Field(default=5 * 86400.0, gt=0)
    # Attempts started per second per endpoint, per process (a burst of as many is allowed).
    webhook_rate_limit_per_endpoint_per_s: float = Field(default=50.0, gt=0)
    # Attempts in flight per process, and per endpoint.
    webhook_max_concurrency: int = Field(default=64, ge=1, le=1024)
    webhook_max_concurrency_per_endpoint: int = Field(default=4, ge=1, le=64)
    # An endpoint whose attempts failed this many times in a row rests (is not
    # attempted) for a second, doubling with each failed probe up to the max.
    webhook_rest_after_failures: int = Field(default=5, ge=1, le=1000)
    webhook_rest_max_s: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("webhook_retry_schedule_s", mode="before")
    @classmethod
    def _schedule(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("webhook_retry_schedule_s")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if not value or any(delay <= 0 for delay in value):
            raise ValueError("must list one or more positive delays in seconds")
        return value


class RealtimeSettings(BaseSettings):
    """Devices, the WebSocket gateway and the events it relays."""

    model_config = _SECTION_CONFIG

    realtime_max_devices_per_user: int = Field(default=20, ge=1, le=1000)
    # A challenge's nonce must be signed within this long, once.
    realtime_nonce_ttl_s: float = Field(default=10.0, gt=0, le=300)
    # Failed handshakes allowed per device and per client address.
    realtime_auth_failures_per_minute: int = Field(default=10, ge=1)
    # Frames larger than this close the connection (1009).
    realtime_max_frame_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)
    # Messages a connection may send per second (a burst of as many is allowed).
    realtime_messages_per_s: float = Field(default=100.0, gt=0)
    # Messages waiting to be sent to one connection; a consumer that falls
    # further behind is disconnected (4408) rather than held in memory.
    realtime_send_buffer: int = Field(default=1000, ge=1, le=100_000)
    realtime_max_connections_per_user: int = Field(default=10, ge=1, le=1000)
    realtime_ping_interval_s: float = Field(default=20.0, gt=0)
    # Client clocks may be this far off when a TTL is checked.
    realtime_clock_skew_s: float = Field(default=300.0, ge=0)
    realtime_default_ttl_s: int = Field(default=86400, ge=1)
    realtime_max_ttl_s: int = Field(default=30 * 86400, ge=1)
    # A live session not heard from for this long leaves presence (a crashed process's).
    realtime_presence_ttl_s: float = Field(default=30.0, gt=0)


class Settings(BaseSettings):
    """All of keel's configuration. Build it with :func:`load_settings`."""

    model_config = _SECTION_CONFIG

    env: Environment = Environment.DEVELOPMENT
    secret_key: SecretStr | None = None
    debug: bool = False

    http: HttpSettings = Field(default_factory=HttpSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)

    @property
    def signing_key(self) -> SecretStr:
        """The secret key, or the development key where one is allowed."""
        if self.secret_key is not None:
            return self.secret_key
        return SecretStr(DEVELOPMENT_SECRET_KEY)

    @property
    def docs_exposed(self) -> bool:
        return _decided(self.http.expose_docs, default=not self.env.is_deployed)

    @property
    def metrics_exposed(self) -> bool:
        return _decided(self.http.expose_metrics, default=not self.env.is_deployed)

    @property
    def json_logs(self) -> bool:
        fmt = self.observability.log_format
        return fmt == "json" if fmt != "auto" else self.env.is_deployed


def _decided(choice: bool | None, *, default: bool) -> bool:
    return default if choice is None else choice


def configuration_problems(settings: Settings) -> list[str]:
    """Everything that makes these settings unfit for their environment.

    Development and test accept convenient defaults; staging and production
    must decide everything explicitly and hold a real secret.
    """
    if not settings.env.is_deployed:
        return []
    problems: list[str] = []
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    if not key:
        problems.append("KEEL_SECRET_KEY is not set")
    elif key.strip().lower() in KNOWN_DEFAULT_SECRETS:
        problems.append("KEEL_SECRET_KEY is a known default value")
    elif len(key.encode()) < MIN_SECRET_KEY_BYTES:
        problems.append(f"KEEL_SECRET_KEY is shorter than {MIN_SECRET_KEY_BYTES} bytes")
    if settings.debug:
        problems.append("KEEL_DEBUG must be off")
    if "*" in settings.http.cors_origins:
        problems.append("KEEL_CORS_ORIGINS must list origins, not '*'")
    if settings.http.expose_docs is None:
        problems.append("KEEL_EXPOSE_DOCS must be set to true or false")
    if settings.http.expose_metrics is None:
        problems.append("KEEL_EXPOSE_METRICS must be set to true or false")
    if not settings.rate_limit.enabled:
        problems.append("KEEL_RATE_LIMITS=off is for load tests only")
    if settings.auth.argon2_memory_kib < 19 * 1024 or settings.auth.argon2_time_cost < 2:
        problems.append("argon2 cost below the OWASP minimum (19 MiB memory, 2 passes)")
    for old_key in settings.auth.previous_secret_keys:
        if len(old_key.get_secret_value().encode()) < MIN_SECRET_KEY_BYTES:
            problems.append(f"KEEL_PREVIOUS_SECRET_KEYS has a key shorter than {MIN_SECRET_KEY_BYTES} bytes")
    return problems


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword overrides win (tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
