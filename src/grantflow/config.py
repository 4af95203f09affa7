"""Process configuration: one Settings object, read from GRANTFLOW_* variables and an optional file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Config(BaseSettings):
    """Everything the process needs to start; validated once, never read from os.environ elsewhere."""

    model_config = SettingsConfigDict(
        env_prefix="GRANTFLOW_",
        env_file=None,
        extra="ignore",
    )

    data_dir: Path = Path("./var")
    database_url: str | None = None
    admin_password: SecretStr | None = None
    oauth_client_secret: SecretStr | None = None
    # Key that encrypts secrets at rest (signing keys, SMTP password). Every replica needs the same one;
    # when unset, one is generated in the data directory.
    secret_key: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)

    token_issuer: str = "grantflow"
    access_token_lifetime_seconds: int = Field(default=300, ge=30, le=86400)
    token_leeway_seconds: int = Field(default=5, ge=0, le=60)
    # A login session lasts this long without a password (PrivX: 8 hours).
    refresh_token_lifetime_seconds: int = Field(default=8 * 3600, ge=60)

    # SMTP: extra CA certificates to trust (a private relay's CA), the hosts testsmtp and mail may reach (empty:
    # any host that is not link-local or a cloud metadata address), and the time a whole probe may take.
    smtp_ca_file: Path | None = None
    smtp_allowed_hosts: str = ""
    smtp_probe_seconds: float = Field(default=15.0, gt=0, le=120)

    # Background work: whether `serve` runs the mail delivery worker and the scheduler beside the API (`grantflow
    # worker` runs them alone), and how often the scheduler looks for due work.
    background_workers: bool = True
    scheduler_poll_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Notification delivery (decisions.md §6): how often an idle worker looks for due mail, how long a claim lasts
    # before another worker may take the messages over, how many messages one SMTP connection carries, the first
    # retry delay (doubling each time, at most an hour) and the time one SMTP command may take.
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_lease_seconds: int = Field(default=120, ge=2, le=3600)
    outbox_batch_size: int = Field(default=50, ge=1, le=1000)
    outbox_retry_seconds: int = Field(default=60, ge=1, le=3600)
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # A static bearer token for Prometheus scrapes of /metrics (an admin token works too).
    metrics_token: SecretStr | None = None
    # Web UI sign-in sessions: idle and absolute lifetimes.
    web_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    web_session_hours: int = Field(default=12, ge=1, le=24 * 30)

    # Retention (jobs/retention.py), run by the background jobs of one replica per interval: expired refresh
    # tokens and authorization codes are kept this many hours more, finished mail this many days, audit events
    # this many days (0: for ever).
    retention_interval_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    retention_expired_credentials_hours: int = Field(default=24, ge=0)
    retention_outbox_days: int = Field(default=30, ge=1)
    retention_audit_days: int = Field(default=400, ge=0)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # The HTTP server (http/server.py): a request head over this size or with more fields is answered 431; a head
    # or a body that does not arrive in time is answered 408 and its connection closed.
    http_max_header_bytes: int = Field(default=64 * 1024, ge=4096, le=16 * 1024 * 1024)
    http_max_headers: int = Field(default=100, ge=10, le=10000)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    http_body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # One line per request in the log (uvicorn's access log, secrets redacted); off saves its cost on busy servers.
    access_log: bool = True
    # After start-up the objects made so far are frozen out of the garbage collector's view (they live as long as
    # the process), and the youngest generation is collected after this many allocations (CPython: 700); 0 keeps
    # CPython's behaviour.
    gc_gen0_threshold: int = Field(default=50_000, ge=0, le=10_000_000)
    # `serve --workers N`: the supervisor kills (SIGKILL) and replaces a worker that does not answer its health
    # ping within this time. uvicorn's 5 s lets an overloaded but healthy worker be killed with its requests.
    worker_healthcheck_seconds: int = Field(default=30, ge=5, le=600)
    database_pool_size: int = Field(default=20, ge=1)
    # A pooled PostgreSQL connection idle longer than this is pinged before use (and replaced if dead).
    database_ping_after_idle_seconds: float = Field(default=5.0, ge=0)

    # argon2id cost; defaults follow RFC 9106's second recommended option (64 MiB, t=3).
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_cost_kib: int = Field(default=65536, ge=8)
    # At most this many hashes are computed at once (one per core is right); at most `queue` more wait, and the
    # rest are answered 503 with Retry-After. A database connection is never held while a hash is computed.
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    password_hash_queue: int = Field(default=100, ge=0)
    # How long a request waits for a free database connection before it is answered 503.
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'grantflow.db').resolve()}"

    @property
    def smtp_allowed_host_set(self) -> frozenset[str]:
        """GRANTFLOW_SMTP_ALLOWED_HOSTS as lower-case names; empty means any host."""
        return frozenset(h.strip().lower() for h in self.smtp_allowed_hosts.split(",") if h.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def load_config(config_file: Path | None = None) -> Config:
    """Read the configuration from the environment, then from an optional dotenv-style file."""
    if config_file is not None:
        return Config(_env_file=config_file)
    return Config()
