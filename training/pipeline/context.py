"""What the pipeline's stages share during one run (``Context``), the additions a caller may bring (``Extras``),
and the history files the history stage leaves for the stages after it (``<work>/history/current``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import redis

from recsys.clock import utcnow
from recsys.columns import Columns
from recsys.data.report import LoadResult, ValidationReport
from recsys.events.history import base_end
from recsys.events.store import EventStore
from recsys.exceptions import DataError
from recsys.implicit_feedback import empty_rows
from recsys.store.keys import Keys
from training.pipeline.config import DEMO, PipelineConfig
from training.pipeline.state import read_json, write_json


@dataclasses.dataclass(frozen=True)
class Extras:
    """Work a caller adds to two stages (``centric demo``: dashboard checks, a fitted propensity model).

    ``after_analyze(ctx)`` runs at the end of the analyze stage and returns counts for its report;
    ``decide_inputs(ctx)`` runs before ``run_decide`` and returns (counts, keyword arguments for ``run_decide``).
    ``name`` enters the fingerprints of both stages, so a work directory run with other extras reruns them.
    """

    name: str
    after_analyze: Callable[[Context], dict[str, Any]] | None = None
    decide_inputs: Callable[[Context], tuple[dict[str, Any], dict[str, Any]]] | None = None


@dataclasses.dataclass
class Context:
    """What the stages share during one run."""

    config: PipelineConfig
    home: Path
    work: Path
    artifacts: Path
    client: redis.Redis
    keys: Keys
    force: bool
    state: dict[str, Any]
    fps: dict[str, str] = dataclasses.field(default_factory=dict)
    history: LoadResult | None = None
    extras: Extras | None = None

    @property
    def store(self) -> EventStore:
        """The event store."""
        return EventStore(self.config.events(self.home))

    def base_path(self) -> Path:
        """The base transactions file (The Complete Journey's for ``demo``)."""
        if self.config.transactions == DEMO:
            from recsys.data.demo import demo_dir

            return demo_dir() / "transactions.parquet"
        path = Path(self.config.transactions)
        if not path.exists():
            raise DataError(f"{path}: transactions file not found; set [data] transactions in centric.toml")
        return path

    def schema(self) -> str:
        """The base file's layout."""
        return "complete-journey" if self.config.transactions == DEMO else self.config.schema

    def shift(self) -> dt.timedelta | None:
        """How far the base file's dates are moved (``rebase_dates``), fixed at the first run of this base file."""
        if not self.config.rebase_dates:
            return None
        recorded = self.state.get("rebase") or {}
        if recorded.get("base") != self.fps["base"]:
            last = base_end(self.base_path(), self.schema(), self.config.path("catalog"), self.work / "history")
            days = ((utcnow() - dt.timedelta(days=1)).date() - last.date()).days
            recorded = {"base": self.fps["base"], "days": days, "base_ended": last.isoformat()}
            self.state["rebase"] = recorded
        return dt.timedelta(days=int(recorded["days"]))

    def history_result(self, events_only: bool = False) -> LoadResult:
        """The history the history stage saved (``events_only``: the lines that came from events)."""
        return load_saved_history(self, events_only)

    def active_version(self) -> str | None:
        """The active snapshot version in Redis."""
        value = self.client.get(self.keys.snapshot_pointer())
        return value.decode() if value else None


# --- history files ----------------------------------------------------------------------------------------------
IMPLICIT = "implicit.parquet"  # views and clicks, written only when the weights ask for them


def history_dir(ctx: Context) -> Path:
    return ctx.work / "history" / "current"


def save_history(ctx: Context, history: Any) -> None:
    folder = history_dir(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    result = history.result
    result.transactions.write_parquet(folder / "transactions.parquet")
    result.returns.write_parquet(folder / "returns.parquet")
    if result.catalog is not None:
        result.catalog.write_parquet(folder / "catalog.parquet")
    else:
        (folder / "catalog.parquet").unlink(missing_ok=True)
    history.events.transactions.write_parquet(folder / "event_transactions.parquet")
    history.events.returns.write_parquet(folder / "event_returns.parquet")
    implicit = folder / IMPLICIT
    if not history.implicit.is_empty():
        history.implicit.write_parquet(implicit)
    else:
        implicit.unlink(missing_ok=True)  # never an earlier run's views beside this history
    write_json(dataclasses.asdict(result.report), folder / "report.json")


def load_saved_history(ctx: Context, events_only: bool = False) -> LoadResult:
    folder = history_dir(ctx)
    catalog = folder / "catalog.parquet"
    prefix = "event_" if events_only else ""
    return LoadResult(
        transactions=pl.read_parquet(folder / f"{prefix}transactions.parquet"),
        returns=pl.read_parquet(folder / f"{prefix}returns.parquet"),
        catalog=pl.read_parquet(catalog) if catalog.exists() else None,
        report=ValidationReport(**read_json(folder / "report.json", {})),
    )


def load_saved_implicit(ctx: Context) -> pl.DataFrame:
    """The views and clicks the history stage saved (empty when it read none: the weights were 0)."""
    path = history_dir(ctx) / IMPLICIT
    return pl.read_parquet(path) if path.exists() else empty_rows()


def sample_history(history: Any, customers: int, seed: int = 7) -> Any:
    """Keep ``customers`` customers of the base file, drawn at random with a fixed seed (so the same ones on every
    run, whatever events arrive), in the history and its event lines alike; other customers' rows are dropped."""
    base_rows = history.result.transactions.height - history.events.transactions.height
    ids = history.result.transactions.slice(0, base_rows).get_column(Columns.customer_id).unique().sort()
    if customers >= ids.len():
        return history
    keep = pl.col(Columns.customer_id).is_in(ids.sample(n=customers, seed=seed).implode())

    def only(result: LoadResult) -> LoadResult:
        return dataclasses.replace(
            result, transactions=result.transactions.filter(keep), returns=result.returns.filter(keep)
        )

    return dataclasses.replace(
        history, result=only(history.result), events=only(history.events), implicit=history.implicit.filter(keep)
    )
