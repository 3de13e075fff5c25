"""The settings object. Each process (CLI, service) builds exactly one; library code takes explicit arguments."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment variables with the ``CENTRIC_`` prefix (``CENTRIC_REDIS_URL``, ``CENTRIC_ENV`` …)."""

    model_config = SettingsConfigDict(env_prefix="CENTRIC_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="Use this Redis (redis://, rediss://, unix://; a cluster: redis+cluster://host:port,...). "
        "Unset: start a private embedded redis-server.",
    )
    env: str = Field(default="dev", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Key namespace: centric:{env}:…")
    home: Path = Field(
        default=Path(".centric"), description="Working directory for embedded Redis data and runtime files."
    )
    appendfsync: str = Field(
        default="always", pattern=r"^(always|everysec|no)$", description="AOF fsync policy of the embedded Redis."
    )
    ledger_wait_replicas: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Redis Cluster: acknowledge a loyalty write only once this many replicas have it (WAIT); 1 keeps "
        "acknowledged writes through a failover (docs/scale.md).",
    )
    ledger_wait_timeout_ms: int = Field(default=500, ge=1, description="How long a ledger write waits for replicas.")
    host: str = Field(default="127.0.0.1", description="Address the service binds to (loopback by default).")
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    snapshot_keep: int = Field(default=3, ge=1, description="Published versions kept for rollback.")
    snapshot_ttl_days: int = Field(default=7, ge=1, description="Inactive versions expire after this many days.")
    loyalty_program: Path = Field(default=Path("examples/loyalty.toml"))
    offers_catalog: Path = Field(default=Path("examples/offers.toml"))
    log_level: str = Field(default="info")
    events_dir: Path | None = Field(
        default=None, description="Event store directory (default <home>/events). `centric events sync` writes it."
    )
    events_backlog_max: int = Field(
        default=1_000_000,
        ge=1,
        description="Unsynced events in the stream above which /readyz says degraded and /metrics flags it.",
    )
    events_backlog_limit: int = Field(
        default=5_000_000,
        ge=1,
        description="Unsynced events at which POST /v1/events is refused with 503 (the client keeps and retries them).",
    )

    def events_path(self) -> Path:
        """The event store directory: ``events_dir``, else ``<home>/events``."""
        return self.events_dir if self.events_dir is not None else self.home / "events"

    pipeline_dir: Path | None = Field(
        default=None,
        description="Work directory of `centric pipeline` (its run reports are under runs/); default HOME/pipeline.",
    )
    dashboard_warmup: bool = Field(
        default=True,
        description="Compute the dashboard's loyalty and campaign figures in the background when the service starts.",
    )
