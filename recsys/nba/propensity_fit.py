"""Fit the offer-acceptance model from a :class:`ResponseHistory`, validate it on later exposures, version it.

Protocol: exposures are labelled (``response_history.label_exposures``), given features as of their own start
(``response_features``), and split by time: exposures starting on/after ``valid_from`` (default: the start at
which the last ``valid_share`` of exposures begins) are the validation set. Earlier ones train, knowing only what
was known before the cut (``propensity_select``): their labels as they stood at the cut (a redemption from the
validation period never labels a training exposure), the learner on all but a time-later calibration fold, the
calibration on that fold; the regularisation, the calibration method, the fold rule and the feature set
(``response_features.FEATURE_SETS``: response-history counts from the start of the data, or over a trailing window)
are chosen by forward chaining inside the training period. The validation period is scored once, for the report.
The saved model is the one validated: its report is exactly what it scored on data it never saw (AUC, ECE on 10
equal-mass bins with its noise floor, see ``recsys.nba.calibration``), and says what was chosen how (``selection``).

Models are saved as ``<dir>/propensity/<version>.json``; the version sorts by fit time, so the newest is last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from recsys.clock import as_utc, utcnow
from recsys.exceptions import DataError
from recsys.nba.calibration import ECE_BINS, calibration_table, ece_noise_floor
from recsys.nba.propensity_model import CALIBRATIONS, LEARNERS, PropensityModel
from recsys.nba.propensity_select import CutRows, choose_settings, design, fit_at_cut, rows_at_cut
from recsys.nba.response_features import (
    FEATURE_SETS,
    KIND_PREFIX,
    LOG_FEATURES,
    feature_names,
    kind_features,
    training_features,
)
from recsys.nba.response_history import DEFAULT_WINDOW_DAYS, ResponseHistory, label_exposures, labels_at

MODEL_DIR = "propensity"
VALID_SHARE = 0.25
VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")  # what save_versioned names a model


def _split(table: pl.DataFrame, valid_from: dt.datetime | None, data_end: dt.datetime) -> dt.datetime:
    """Return the validation cut: ``valid_from``, or the start from which the last ``VALID_SHARE`` of the exposures
    whose window closed by ``data_end`` begin (an open window cannot be scored)."""
    if valid_from is not None:
        return as_utc(valid_from)
    closed = table.filter(pl.col("until") <= data_end)
    starts = (closed if not closed.is_empty() else table).get_column("start").sort()
    return starts[int(len(starts) * (1 - VALID_SHARE))]


def response_table(
    history: ResponseHistory,
    purchases: pl.DataFrame,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    day_grain: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Return the labelled exposures with every feature as of each start (in time order), and the names of the
    default feature set's features."""
    kinds = kind_features(history.offer_kinds.get_column("kind").to_list())
    labelled = label_exposures(history, window_days).sort("start", "offer_id", "customer_id")
    table = training_features(labelled, purchases, history, kinds, day_grain=day_grain, on_progress=on_progress)
    return table, feature_names(purchases, kinds)


def fit_propensity(
    history: ResponseHistory,
    purchases: pl.DataFrame,
    *,
    learner: str = "logistic",
    calibration: str | None = None,
    c: float | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    valid_from: dt.datetime | None = None,
    day_grain: bool = False,
    feature_set: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PropensityModel:
    """Return a fitted, calibrated model whose ``report`` holds the validation AUC, ECE and reliability table.

    ``calibration``, ``c`` and ``feature_set`` (a key of ``FEATURE_SETS``) left ``None`` are chosen on the training
    period (``propensity_select``); given, they are used as they are. ``purchases`` come from
    ``response_features.purchases_frame``. Raises ``DataError`` when the history has no exposures, or a split
    lacks accepted or declined exposures.
    """
    started = time.perf_counter()
    if learner not in LEARNERS:
        raise DataError(f"learner must be one of {LEARNERS}, got {learner!r}")
    if calibration is not None and calibration not in CALIBRATIONS:
        raise DataError(f"calibration must be auto or one of {CALIBRATIONS}, got {calibration!r}")
    if feature_set is not None and feature_set not in FEATURE_SETS:
        raise DataError(f"feature set must be auto or one of {tuple(FEATURE_SETS)}, got {feature_set!r}")
    if history.exposures.is_empty():
        raise DataError(f"{history.source}: no exposures to learn from")
    table, features = response_table(
        history, purchases, window_days=window_days, day_grain=day_grain, on_progress=on_progress
    )
    data_end = data_end_of(history, purchases)
    cut = _split(table, valid_from, data_end)
    train, valid = table.filter(pl.col("start") < cut), table.filter(pl.col("start") >= cut)
    for part, where in ((train, "before"), (valid, "on or after")):
        if part.is_empty():
            first, last = (table.get_column("start").dt.strftime("%Y-%m-%d").sort()[i] for i in (0, -1))
            raise DataError(
                f"{history.source}: no exposures start {where} the validation cut {cut:%Y-%m-%d}; the exposures "
                f"start from {first} to {last}: choose a --valid-from between them"
            )
    # A log ends at some moment (today, for a live event store): a validation window still open then has no final
    # outcome yet, and scoring it as declined would understate the accept rate. Only closed windows are scored.
    valid = labels_at(valid, data_end)
    open_at_end = int((~valid.get_column("complete")).sum())
    valid = valid.filter(pl.col("complete"))
    if valid.is_empty():
        raise DataError(
            f"{history.source}: every validation exposure (from {cut:%Y-%m-%d}) has an attribution window still "
            f"open at the end of the data ({data_end:%Y-%m-%d}); choose an earlier --valid-from"
        )
    y_valid = valid.get_column("accepted").to_numpy().astype(np.float64)
    if len(np.unique(y_valid)) < 2:
        raise DataError(f"{history.source}: the validation exposures (from {cut:%Y-%m-%d}) are all of one outcome")
    kinds = tuple(f for f in features if f.startswith(KIND_PREFIX))
    names = (feature_set,) if feature_set else tuple(FEATURE_SETS)
    sets = {name: feature_names(purchases, kinds, name) for name in names}
    chosen = choose_settings(train, cut, features, LOG_FEATURES, learner, calibration, sets)
    features = tuple(chosen["features"])
    try:
        rows = rows_at_cut(train, cut, chosen["fold_rule"], chosen["calibration_share"])
    except DataError as exc:
        raise DataError(f"{history.source}: {exc}") from None
    if c is not None:
        chosen |= {"c": c, "method": chosen["method"] + f"; c={c} given"}
    model = fit_at_cut(rows, features, LOG_FEATURES, learner, chosen["c"], chosen["calibration"])
    p = model.predict_proba(design(valid, features))  # the one look at the validation period
    cal = calibration_table(p, y_valid, bins=ECE_BINS)
    model.report = {
        "source": history.source,
        "fitted_at": utcnow().isoformat(),
        "attribution_window_days": window_days,
        "split": _split_report(rows, train, cut, y_valid) | {"valid_open_at_data_end": open_at_end},
        "selection": chosen,
        "auc": round(float(roc_auc_score(y_valid, p)), 4),
        "ece": round(cal["ece"], 4),
        "ece_binning": f"{ECE_BINS} equal-mass bins",
        "ece_noise_floor": round(ece_noise_floor(p, ECE_BINS), 4),
        "calibration_method": chosen["calibration"],
        "calibration_fold_rule": chosen["fold_rule"],
        "calibration_share": chosen["calibration_share"],
        "feature_set": chosen["feature_set"],
        "c": chosen["c"],
        "brier": round(cal["brier"], 4),
        "mean_predicted": round(float(p.mean()), 4),
        "calibration": cal["bins"],
        "fit_seconds": round(time.perf_counter() - started, 2),
    }
    return model


def data_end_of(history: ResponseHistory, purchases: pl.DataFrame) -> dt.datetime:
    """Return the latest moment the data knows of: an exposure's start, a redemption or a purchase."""
    moments = [history.exposures.get_column("start").max(), purchases.get_column("ts").max()]
    if not history.outcomes.is_empty():
        moments.append(history.outcomes.get_column("timestamp").max())
    # the validation windows are [start, until): an event at the last moment is inside the data, so the end is just
    # after it
    return max(as_utc(m) for m in moments if isinstance(m, dt.datetime)) + dt.timedelta(microseconds=1)


def _split_report(rows: CutRows, train: pl.DataFrame, cut: dt.datetime, y_valid: np.ndarray) -> dict[str, Any]:
    starts = rows.rows.get_column("start")
    y = rows.rows.get_column("accepted").to_numpy()
    return {
        "valid_from": cut.isoformat(),
        "train_exposures": train.height,
        "train_used": rows.rows.height,
        "train_censored_at_cut": rows.censored,
        "train_dropped_unobserved": rows.dropped,
        "calibration_exposures": int(rows.fold.sum()),
        "calibration_from": starts.filter(pl.Series(rows.fold)).min().isoformat(),  # type: ignore[union-attr]
        "valid_exposures": len(y_valid),
        "train_accept_rate": round(float(y.mean()), 4),
        "calibration_accept_rate": round(float(y[rows.fold].mean()), 4),
        "valid_accept_rate": round(float(y_valid.mean()), 4),
    }


def save_versioned(model: PropensityModel, out_dir: Path) -> Path:
    """Write ``model`` as ``out_dir/propensity/<version>.json`` and return the path (version = fit time + digest)."""
    digest = hashlib.sha256(json.dumps(model.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    now = utcnow()
    version = f"{now:%Y%m%dT%H%M%SZ}-{digest}"
    model.report["version"] = version
    model.report.setdefault("fitted_at", now.isoformat())
    path = Path(out_dir) / MODEL_DIR / f"{version}.json"
    model.save(path)
    return path


def newest_model(out_dir: Path) -> Path | None:
    """Return the newest saved model under ``out_dir/propensity``, or None when none was fitted."""
    folder = Path(out_dir) / MODEL_DIR
    found = [p for p in folder.glob("*.json") if VERSION_RE.match(p.stem)] if folder.is_dir() else []
    if not found:
        return None
    # the version's time is to the second; two fits within one second are told apart by their report's fitted_at
    return max(found, key=lambda p: (_fitted_at(p), p.name))


def _fitted_at(path: Path) -> str:
    """Return the fit time a saved model's report gives, normalised so that strings sort as times ('' if none)."""
    try:
        fitted = json.loads(path.read_text())["report"]["fitted_at"]
        return as_utc(dt.datetime.fromisoformat(fitted)).isoformat(timespec="microseconds")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def describe(model: PropensityModel) -> dict[str, Any]:
    """Return what a summary says about a model: version, learner, source, AUC, ECE."""
    r = model.report
    return {k: r.get(k) for k in ("version", "source", "auc", "ece")} | {"learner": model.learner}
