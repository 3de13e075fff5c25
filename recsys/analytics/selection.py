"""Choosing the purchase model per data set on a calibration/holdout split.

The split: with an explicit calibration end (``centric analyze --calibration-end``), calibration is every day up
to it and the holdout every later day. Without one, the data's span from its first to its last purchase day is cut
by time: the last ``holdout_fraction`` of it (default one half, as the BG/NBD paper's 39 + 39 weeks of CDNOW) is the
holdout. Each candidate model is fitted on the calibration summary and predicts every calibration customer's
purchase days in the holdout (conditional expectation); the model with the lowest mean absolute error per customer
is chosen (on a seeded sample of 100,000 calibration customers when there are more; errors within 0.1 % of the
lowest count as a tie, won by MBG/NBD, then BG/NBD, then Pareto/NBD: the
fastest to fit and score). Customers who first buy in the holdout are not scored (no model has seen them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from recsys.analytics.btyd import MODELS, PurchaseModel, make_model
from recsys.analytics.summary import (
    DURATION_HOLDOUT,
    FREQUENCY_HOLDOUT,
    as_utc_day,
    calibration_holdout,
    data_end,
)
from recsys.columns import Columns
from recsys.columns import ProfileColumns as P
from recsys.exceptions import ConfigError, DataError

HOLDOUT_FRACTION = 0.5
# The choice is made on at most this many calibration customers (a seeded sample): enough to rank three models,
# and it bounds the cost of fitting all three on millions of customers
SELECTION_CUSTOMERS = 100_000
METRIC = "mae_per_customer"
# Holdout errors within TIE (relative) of the best count as equal (e.g. all three models reduce to the NBD when the
# data show no dropout, as on Online Retail); then the first in PREFERENCE wins: the fastest to fit and score.
TIE = 0.001
PREFERENCE = ("mbgnbd", "bgnbd", "pnbd")
# When no holdout can be formed: MBG/NBD, the BG/NBD variant that does not call every one-time buyer alive.
DEFAULT_MODEL = "mbgnbd"


@dataclass(frozen=True)
class HoldoutSplit:
    """Calibration end and observation end (midnight UTC days, both inclusive) and how they were chosen."""

    calibration_end: datetime
    observation_end: datetime
    rule: str

    def to_dict(self, unit_days: float) -> dict[str, Any]:
        """Return the split as JSON-able dates, its rule and the holdout length in model time units."""
        return {
            "calibration_end": self.calibration_end.date().isoformat(),
            "observation_end": self.observation_end.date().isoformat(),
            "holdout_length": (self.observation_end - self.calibration_end).days / unit_days,
            "rule": self.rule,
        }


def split_by_fraction(transactions: pl.DataFrame, holdout_fraction: float = HOLDOUT_FRACTION) -> HoldoutSplit:
    """Return the time split that holds out the last ``holdout_fraction`` of the data's span of days.

    Raises ``ConfigError`` for a fraction outside (0, 1) and ``DataError`` when the data span fewer than 2 days.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ConfigError(f"holdout fraction must be between 0 and 1 (exclusive), got {holdout_fraction}")
    first = as_utc_day(transactions.select(pl.col(Columns.timestamp).min()).item())
    last = data_end(transactions)
    span = (last - first).days
    cal_days = int(np.floor(span * (1.0 - holdout_fraction)))
    if span < 2 or cal_days < 1:
        raise DataError(f"the data span {span} day(s); a calibration/holdout split needs at least 2")
    return HoldoutSplit(
        first + timedelta(days=cal_days),
        last,
        f"time split: first {cal_days} of {span} days calibration, the last {100 * holdout_fraction:g} % holdout",
    )


def split_at(transactions: pl.DataFrame, calibration_end: date | datetime | str) -> HoldoutSplit:
    """Return the split at an explicit calibration end, the holdout running to the last data day.

    Raises ``DataError`` when no purchase falls after ``calibration_end``.
    """
    cal, last = as_utc_day(calibration_end), data_end(transactions)
    if last <= cal:
        raise DataError(f"no purchases after the calibration end {cal.date()} (the data end on {last.date()})")
    return HoldoutSplit(cal, last, "calibration end given (--calibration-end); holdout to the last data day")


def holdout_frame(
    transactions: pl.DataFrame, split: HoldoutSplit, time_unit: str, max_customers: int | None = SELECTION_CUSTOMERS
) -> pl.DataFrame:
    """Return the calibration summary with each customer's holdout purchase days (:func:`calibration_holdout`);
    with more than ``max_customers`` calibration customers, a seeded random sample of that many."""
    frame = calibration_holdout(transactions, split.calibration_end, split.observation_end, time_unit=time_unit)
    if max_customers is not None and frame.height > max_customers:
        # sorted first: the join in calibration_holdout does not promise an order, and the sample must not vary
        frame = frame.sort(Columns.customer_id).sample(n=max_customers, seed=0).sort(Columns.customer_id)
    return frame


def holdout_errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Return MAE and RMSE per customer, predicted and actual totals and the total error in percent."""
    total_actual = float(actual.sum())
    return {
        "mae_per_customer": float(np.abs(predicted - actual).mean()),
        "rmse_per_customer": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "predicted_total": float(predicted.sum()),
        "actual_total": total_actual,
        "aggregate_error_pct": float(100 * (predicted.sum() - total_actual) / max(total_actual, 1.0)),
    }


@dataclass
class ModelScore:
    """One candidate fitted on the calibration period and scored on the holdout (``error`` set if it failed)."""

    name: str
    model: PurchaseModel | None
    predicted: np.ndarray | None
    errors: dict[str, float]
    fit_seconds: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters, log-likelihood, holdout errors and fit time (or the failure)."""
        if self.model is None:
            return {"label": MODELS[self.name].label, "error": self.error}
        return {
            "label": self.model.label,
            "params": self.model.to_dict(),
            **{k: round(v, 6) for k, v in self.errors.items()},
            "fit_seconds": round(self.fit_seconds, 3),
        }


def score_models(frame: pl.DataFrame, names: tuple[str, ...]) -> list[ModelScore]:
    """Fit each model in ``names`` on the calibration columns of ``frame`` and score it on the holdout columns."""
    x, t_x, T = (frame[c].to_numpy().astype(float) for c in (P.frequency, P.recency, P.T))
    actual = frame[FREQUENCY_HOLDOUT].to_numpy().astype(float)
    duration = float(frame[DURATION_HOLDOUT][0])
    scores = []
    for name in names:
        start = time.perf_counter()
        try:
            model = make_model(name).fit(x, t_x, T)
            predicted = model.conditional_expected(duration, x, t_x, T)
            if not np.isfinite(predicted).all():
                raise DataError(f"{model.label} gives non-finite holdout predictions on these data")
        except DataError as exc:
            scores.append(ModelScore(name, None, None, {}, time.perf_counter() - start, str(exc)))
            continue
        scores.append(
            ModelScore(name, model, predicted, holdout_errors(predicted, actual), time.perf_counter() - start)
        )
    return scores


def choose(scores: list[ModelScore], metric: str = METRIC, tie: float = TIE) -> ModelScore:
    """Return the scored model with the lowest ``metric``; among those within ``tie`` (relative) of the lowest, the
    first in :data:`PREFERENCE`. Raises ``DataError`` when every candidate failed."""
    ok = [s for s in scores if s.model is not None]
    if not ok:
        reasons = "; ".join(f"{s.name}: {s.error}" for s in scores)
        raise DataError(f"no CLV model could be fitted on the calibration period ({reasons})")
    best = min(s.errors[metric] for s in ok)
    close = [s for s in ok if s.errors[metric] <= best * (1.0 + tie)]
    return min(close, key=lambda s: PREFERENCE.index(s.name) if s.name in PREFERENCE else len(PREFERENCE))
