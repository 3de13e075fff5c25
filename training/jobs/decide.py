"""``run_decide``: read profiles (+ recommendations, items, optional loyalty snapshot), decide, write artifacts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl

from recsys.clock import utcnow
from recsys.columns import Columns
from recsys.exceptions import ConfigError, DataError
from recsys.nba.decision import FeatureContext, Uplift, build_frame, decide
from recsys.nba.event_history import catalog_offer_table
from recsys.nba.offers import Catalog, load_catalog
from recsys.nba.propensity_fit import newest_model
from recsys.nba.propensity_model import PropensityModel
from recsys.nba.response_history import DEFAULT_WINDOW_DAYS, ResponseHistory

HISTORY_FEATURES = ("past_redemptions", "past_exposures")  # the features read from the response history


def _read(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def run_decide(
    out_dir: Path,
    offers_path: Path,
    *,
    profiles_path: Path | None = None,
    loyalty_path: Path | None = None,
    propensity_path: Path | None = None,
    purchases: pl.DataFrame | None = None,
    history: ResponseHistory | None = None,
    use_prior: bool = False,
    objective: str = "response",
    events: pl.DataFrame | None = None,
    experiment_id: str | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> dict[str, Any]:
    """Write ``decisions.parquet``, ``offers.json`` and ``experiments.json`` into ``out_dir``; return a summary.

    ``profiles_path`` defaults to ``out_dir/profiles.parquet``; ``recommendations.parquet`` and
    ``items.parquet`` in ``out_dir`` are used for affinity when present. ``loyalty_path`` (parquet/csv:
    ``customer_id``, ``tier``, ``points_balance``, ``points_to_next_tier``, ``complaints``) is optional:
    without it every customer counts as base tier with 0 points and no complaints. ``propensity_path``: a
    model (``centric propensity fit``); without it the newest ``out_dir/propensity/*.json`` is used, and the
    documented prior only when there is none (or ``use_prior``). A fitted model computes its features from
    ``purchases`` (``response_features.purchases_frame``) and ``history`` (past exposures and redemptions) as of now;
    without ``history`` its history features are 0 for everyone, and the summary's ``warning`` says so.
    ``objective="uplift"`` ranks the offers of an experiment with a control (holdout) arm by incremental value,
    from a two-model learner fitted on ``events`` (purchases within ``window_days`` of the experiment's first
    impression) of its arms (``uplift_from_experiment``).
    Raises ``ConfigError`` (catalog, objective), ``DataError`` (inputs) or ``ArtifactError`` (model).
    """
    out_dir = Path(out_dir)
    catalog = load_catalog(offers_path)
    profiles_path = Path(profiles_path) if profiles_path else out_dir / "profiles.parquet"
    if not profiles_path.exists():
        raise DataError(
            f"{profiles_path}: profiles not found; run `centric analyze --out {out_dir}` first or pass --profiles"
        )
    frame = build_frame(_read(profiles_path), _read(Path(loyalty_path)) if loyalty_path else None)
    recs_path, items_path = out_dir / "recommendations.parquet", out_dir / "items.parquet"
    recommendations = _read(recs_path) if recs_path.exists() else None
    items = _read(items_path) if items_path.exists() else None
    path = None if use_prior else (Path(propensity_path) if propensity_path else newest_model(out_dir))
    model = PropensityModel.load(path) if path else None
    context = None
    unseen: list[str] = []
    if model is not None and not model.profile_features:
        if purchases is None:
            raise DataError(
                f"{path}: the fitted propensity model computes its features from purchases; pass --transactions "
                "(or --prior to use the documented prior)"
            )
        offer_items, offer_kinds = catalog_offer_table(catalog.offers, items)
        past = history or ResponseHistory(
            pl.DataFrame(schema={"customer_id": pl.String, "offer_id": pl.String, "start": pl.Datetime("us", "UTC")}),
            pl.DataFrame(
                schema={"customer_id": pl.String, "offer_id": pl.String, "timestamp": pl.Datetime("us", "UTC")}
            ),
        )
        catalog_history = ResponseHistory(past.exposures, past.outcomes, offer_items, offer_kinds)
        context = FeatureContext(purchases, catalog_history, features_as_of_moment(purchases))
        unseen = [f for f in HISTORY_FEATURES if f in model.features] if history is None else []
    uplift = None
    if objective == "uplift":
        uplift = uplift_from_experiment(frame, catalog, events, experiment_id, window_days)
    elif objective != "response":
        raise ConfigError(f"--objective must be 'response' or 'uplift', got {objective!r}")
    result = decide(
        frame, catalog, recommendations=recommendations, items=items, model=model, context=context, uplift=uplift
    )
    if unseen:  # trained on real counts, scored on zeros: say so rather than skew p_accept silently
        result.summary["warning"] = (
            f"no response history given: the model's {', '.join(unseen)} are 0 for every customer; pass the past "
            "exposures and redemptions (--exposures, --outcomes) the model was fitted on"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    result.decisions.write_parquet(out_dir / "decisions.parquet")
    # every published offer says which propensity its p_accept came from
    source = result.summary["propensity"]
    (out_dir / "offers.json").write_text(
        json.dumps([o.to_dict() | {"propensity": source} for o in catalog.offers], indent=2)
    )
    (out_dir / "experiments.json").write_text(json.dumps([e.to_dict() for e in catalog.experiments], indent=2))
    return result.summary


def features_as_of_moment(purchases: pl.DataFrame) -> dt.datetime:
    """Return the moment a fitted model's features are taken at: now, or the day after the last purchase if earlier.

    Analyze takes profiles as of the last data day too: a replayed history that ended years ago (the demo's) is
    scored as it stood then, not with every customer looking lapsed for years.
    """
    now = utcnow()
    last = purchases.get_column("ts").max() if purchases.height else None
    if isinstance(last, dt.datetime):
        day_after = dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return min(now, day_after)
    return now


def uplift_from_experiment(
    frame: pl.DataFrame,
    catalog: Catalog,
    events: pl.DataFrame | None,
    experiment_id: str | None,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> Uplift:
    """Return the two-model uplift of an experiment: treated = its non-holdout arms, control = its holdout arms,
    outcome = at least one ``purchase`` event within the attribution window (``uplift.converted_in_window``).
    Raises ``ConfigError`` when no experiment has a control arm (or ``experiment_id`` is unknown) and
    ``DataError`` without events (or without an impression to start the window)."""
    from recsys.nba.uplift import TwoModelUplift, converted_in_window

    candidates = [e for e in catalog.experiments if e.holdout_arms() and experiment_id in (None, e.id)]
    if not candidates:
        known = [e.id for e in catalog.experiments]
        raise ConfigError(
            f"--objective uplift needs an experiment with a holdout (control) arm"
            f"{f' named {experiment_id!r}' if experiment_id else ''}; the catalog's experiments: {known}"
        )
    experiment = candidates[0]
    if events is None or events.is_empty():
        raise DataError("--objective uplift learns from the experiment's outcomes: pass --events or sync the events")
    customers = frame.get_column(Columns.customer_id).cast(pl.String)
    arms = experiment.assign(customers.to_list())
    treated = ~arms.is_in(sorted(experiment.holdout_arms())).to_numpy()
    converted = converted_in_window(events, customers.to_list(), experiment.offers, window_days)
    model = TwoModelUplift().fit(frame, treated, converted)
    return Uplift(model, experiment.id, frozenset(experiment.offers))
