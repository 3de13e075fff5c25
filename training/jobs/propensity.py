"""``run_propensity_fit``: read a response history (The Complete Journey, standard files, or logged events),
fit and validate the acceptance model, and save it as ``OUT/propensity/<version>.json``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from recsys.exceptions import DataError
from recsys.nba.propensity_fit import fit_propensity, save_versioned
from recsys.nba.response_features import purchases_frame
from recsys.nba.response_history import DEFAULT_WINDOW_DAYS, ResponseHistory

SOURCES = ("complete-journey", "files", "events")


def load_history(
    source: str,
    *,
    data: Path | None = None,
    exposures: Path | None = None,
    outcomes: Path | None = None,
    offer_items: Path | None = None,
    offer_kinds: Path | None = None,
    events: Path | None = None,
    transactions: Path | None = None,
    schema: str = "standard",
    offers_catalog: Path | None = None,
    items: Path | None = None,
) -> tuple[ResponseHistory, pl.DataFrame]:
    """Return the history and the purchases (``purchases_frame``) of a source; raises ``DataError``/``ConfigError``."""
    if source == "complete-journey":
        from recsys.data.demo import demo_dir
        from recsys.nba.cj_history import complete_journey_purchases, read_complete_journey

        folder = Path(data) if data else demo_dir()
        tx = pl.read_parquet(folder / "transactions.parquet")
        return read_complete_journey(folder), purchases_frame(complete_journey_purchases(tx))
    if transactions is None and source == "files":
        raise DataError("--transactions is needed: features come from purchases before each exposure")
    purchases = _purchases(transactions, schema) if transactions else None
    if source == "files":
        from recsys.nba.response_history import read_history

        if exposures is None or outcomes is None:
            raise DataError(
                "--source files needs --exposures and --outcomes (CSV or Parquet, see docs/offers-learning.md)"
            )
        assert purchases is not None
        return read_history(exposures, outcomes, offer_items, offer_kinds), purchases
    if source == "events":
        from recsys.nba.event_history import event_history, event_purchases, read_events
        from recsys.nba.offers import load_catalog

        if events is None:
            raise DataError("--source events needs --events (the event store folder or an exported events file)")
        frame = read_events(events)
        catalog = load_catalog(offers_catalog) if offers_catalog else None
        items_frame = pl.read_parquet(items) if items and Path(items).exists() else None
        history = event_history(frame, catalog.offers if catalog else (), items_frame)
        logged = purchases_frame(event_purchases(frame))
        return history, logged if purchases is None else pl.concat([purchases, logged], how="diagonal_relaxed")
    raise DataError(f"--source must be one of {list(SOURCES)}, got {source!r}")


def _purchases(path: Path, schema: str) -> pl.DataFrame:
    from recsys.data import load_transactions

    return purchases_frame(load_transactions(path, schema=schema).transactions)


def run_propensity_fit(
    history: ResponseHistory,
    purchases: pl.DataFrame,
    out_dir: Path,
    *,
    learner: str = "logistic",
    calibration: str | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    valid_from: dt.datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Fit, validate and save the model; return its report with ``path``."""
    model = fit_propensity(
        history,
        purchases,
        learner=learner,
        calibration=calibration,
        window_days=window_days,
        valid_from=valid_from,
        day_grain=history.source == "logged events",
        on_progress=on_progress,
    )
    path = save_versioned(model, out_dir)
    return model.report | {"path": str(path), "learner": learner, "features": list(model.features)}
