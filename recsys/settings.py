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
    # --- limits and rate limits (docs/operations.md) -------------------------------------------------
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Request bodies above this many bytes answer 413."
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Request line plus headers above this many bytes answer 431 (the longest query the API's schema "
        "allows, 4,000 characters percent-encoded, must fit).",
    )
    max_batch: int = Field(
        default=1000,
        ge=1,
        le=1000,
        description="Most events, order lines or grant lines one request may carry (413 beyond); at most 1000, "
        "the schema's own bound.",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A connection that has not sent a whole request head in this time is closed."
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="A request body not received in full within this time closes the connection."
    )
    keep_alive_timeout_s: float = Field(default=5.0, gt=0, description="Idle keep-alive connections close after this.")
    limit_concurrency: int = Field(
        default=2048,
        ge=1,
        description="Open connections plus running requests per worker above which uvicorn answers 503.",
    )
    rate_limit_per_s: float = Field(
        default=1000.0, ge=0, description="Requests per second per API key (token bucket in Redis); 0 turns it off."
    )
    rate_limit_burst: int = Field(default=2000, ge=1, description="Requests a key may send at once above its rate.")
    auth_lookups_per_s: float = Field(
        default=20.0,
        ge=0,
        description="Key lookups in Redis (keys not in the in-process cache) per second per client address; 0: off.",
    )
    auth_grace_s: float = Field(
        default=900.0,
        ge=0,
        description="While Redis is unreachable, a key verified within this many seconds stays valid (degraded mode).",
    )
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
    exploration: str = Field(
        default="",
        description='Offer exploration per channel, JSON: {"app": {"policy": "epsilon_greedy", "epsilon": 0.1}, '
        '"email": {"policy": "thompson"}}; channels not named (and the default) serve greedily. '
        "See docs/offers-learning.md.",
    )
    exploration_seed: int | None = Field(
        default=None, description="Seed of the exploration draws (default: fresh entropy per process)."
    )
    dashboard_warmup: bool = Field(
        default=True,
        description="Ready the dashboard when the service starts, before its first request (at most 10 s): snapshot "
        "loaded, loyalty and campaign figures read from Redis or computed.",
    )
