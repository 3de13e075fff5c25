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
        description="Use this Redis (redis://, rediss://, unix://). Unset: start a private embedded redis-server.",
    )
    env: str = Field(default="dev", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Key namespace: centric:{env}:…")
    home: Path = Field(
        default=Path(".centric"), description="Working directory for embedded Redis data and runtime files."
    )
    appendfsync: str = Field(
        default="always", pattern=r"^(always|everysec|no)$", description="AOF fsync policy of the embedded Redis."
    )
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
