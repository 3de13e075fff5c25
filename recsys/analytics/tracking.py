"""The tracking check of the BTYD papers: repeat purchases per week of the calibration customers, actual vs
predicted, over the calibration and the holdout period (FHL 2005, figure 2; weekly and cumulated).

Weeks are 7-day periods that end on the calibration end day (going back) and start right after it (going
forward), so no week straddles the two periods; the first and the last may be shorter. ``predicted`` is the
model's unconditional expectation for each customer from their first purchase day (what the papers plot);
``predicted_conditional`` (holdout weeks only) is the conditional expectation given each customer's calibration
history, the forecast that the holdout errors in ``models.json`` score (with more than 100,000 distinct customer
patterns, computed on a seeded sample of 100,000 customers and scaled to all).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from recsys.analytics.bgnbd import compress, sample_customers
from recsys.analytics.btyd import PurchaseModel
from recsys.analytics.selection import HoldoutSplit
from recsys.columns import Columns
from recsys.columns import ProfileColumns as P

WEEK_DAYS = 7
MAX_PATTERNS = 100_000  # conditional weekly forecasts beyond this many (x, t_x, T) patterns use a seeded sample


def _edges(frame: pl.DataFrame, split: HoldoutSplit) -> list:
    """Return the week ends (midnight UTC days): the first one is the day before the earliest first purchase."""
    origin = frame.select(pl.col(P.first_purchase).min()).item()
    cal, obs = split.calibration_end, split.observation_end
    back = -(-(cal - origin).days // WEEK_DAYS)
    ahead = -(-(obs - cal).days // WEEK_DAYS)
    edges = [cal + timedelta(days=WEEK_DAYS * j) for j in range(-back, ahead + 1)]
    edges = [max(e, origin - timedelta(days=1)) for e in edges]
    edges[-1] = min(edges[-1], obs)
    return sorted(set(min(e, obs) for e in edges))


def weekly_tracking(
    transactions: pl.DataFrame, frame: pl.DataFrame, model: PurchaseModel, split: HoldoutSplit, unit_days: float
) -> list[dict[str, Any]]:
    """Return one row per week: ``week_end``, ``phase``, ``actual``, ``predicted``, ``predicted_conditional``
    (None in calibration) and the cumulated ``actual_cumulative``, ``predicted_cumulative``.

    ``frame`` is the calibration summary (:func:`recsys.analytics.summary.calibration_holdout`) of the customers to
    track, ``model`` fitted on it, times in units of ``unit_days`` days.
    """
    edges = _edges(frame, split)
    edge_series = pl.Series("edge", edges).dt.cast_time_unit("us")
    first = frame.select(Columns.customer_id, P.first_purchase)
    days = (
        transactions.lazy()
        .select(Columns.customer_id, pl.col(Columns.timestamp).dt.convert_time_zone("UTC").dt.truncate("1d").alias("d"))
        .unique()
        .join(first.lazy(), on=Columns.customer_id, how="inner")
        .filter((pl.col("d") > pl.col(P.first_purchase)) & (pl.col("d") <= split.observation_end))
        .select(pl.col("d").dt.cast_time_unit("us"))
        .collect()
        .get_column("d")
    )
    # bin (e_{k-1}, e_k]: index of the first edge >= the day
    bins = np.searchsorted(edge_series.to_numpy(), days.to_numpy(), side="left")
    actual = np.bincount(bins, minlength=len(edges))[1:].astype(float)

    # unconditional: customers grouped by first purchase day
    births, counts = np.unique(
        ((first[P.first_purchase] - edges[0]).dt.total_days()).to_numpy().astype(float), return_counts=True
    )
    offsets = np.array([(e - edges[0]).days for e in edges], dtype=float)
    age = np.clip(offsets[None, :] - births[:, None], 0.0, None) / unit_days
    cumulative = counts @ model.expected(age)
    predicted = np.diff(cumulative)

    # conditional, for the holdout weeks: one row per (x, t_x, T) pattern
    x, t_x, T, w = compress(*(frame[c].to_numpy().astype(float) for c in (P.frequency, P.recency, P.T)))
    if len(x) > MAX_PATTERNS:
        # one forecast per pattern and week: on a seeded sample of customers, scaled back to all of them
        counts = sample_customers(w, MAX_PATTERNS)
        keep = counts > 0
        x, t_x, T, w = x[keep], t_x[keep], T[keep], counts[keep] * (w.sum() / MAX_PATTERNS)
    cal_k = edges.index(split.calibration_end)
    ahead = (offsets[cal_k:] - offsets[cal_k]) / unit_days
    cond = w @ model.conditional_expected(ahead[None, :], x[:, None], t_x[:, None], T[:, None])
    cond_weekly = np.diff(cond)

    rows = []
    for k in range(1, len(edges)):
        holdout = k > cal_k
        rows.append(
            {
                "week_end": edges[k].date().isoformat(),
                "phase": "holdout" if holdout else "calibration",
                "actual": int(actual[k - 1]),
                "predicted": round(float(predicted[k - 1]), 3),
                "predicted_conditional": round(float(cond_weekly[k - 1 - cal_k]), 3) if holdout else None,
                "actual_cumulative": int(actual[:k].sum()),
                "predicted_cumulative": round(float(cumulative[k] - cumulative[0]), 3),
            }
        )
    return rows


def tracking_totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Return the holdout totals of the tracking rows: actual, unconditional and conditional predictions, errors."""
    hold = [r for r in rows if r["phase"] == "holdout"]
    actual = float(sum(r["actual"] for r in hold))
    uncond = float(sum(r["predicted"] for r in hold))
    cond = float(sum(r["predicted_conditional"] for r in hold))
    denom = max(actual, 1.0)
    return {
        "holdout_actual": actual,
        "holdout_predicted": round(uncond, 3),
        "holdout_predicted_conditional": round(cond, 3),
        "holdout_error_pct": round(100 * (uncond - actual) / denom, 3),
        "holdout_conditional_error_pct": round(100 * (cond - actual) / denom, 3),
        "weekly_mae": round(float(np.mean([abs(r["predicted"] - r["actual"]) for r in hold])) if hold else 0.0, 3),
    }
