"""Uplift: the increment an offer causes, P(accept | offer) − P(accept | no offer), from an experiment's arms.

A **two-model learner** (T-learner): one classifier (scikit-learn's ``LogisticRegression``, or LightGBM) is fitted
on the treated customers, another on the control (holdout) customers, both on the same profile features; the uplift
of a customer is the difference of their predictions. ``decide --objective uplift`` ranks offers by
``uplift × value − P(accept | offer) × cost − contact cost`` (the cost is paid per redemption, so its expectation
is the treated probability times the cost).

Features are profile columns as of the decision (``recsys.columns.ProfileColumns``): the numeric RFM/CLV ones
(``log1p`` for counts and money, standardised, a missing value as the training mean) and one indicator per
category of RFM segment, lifecycle stage, value tier and loyalty tier that the training data holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recsys.columns import ProfileColumns as P
from recsys.exceptions import DataError
from recsys.nba.fields import NbaFields

NUMERIC = (
    P.frequency,
    P.recency,
    P.T,
    P.monetary,
    P.total_spend,
    P.r_score,
    P.f_score,
    P.m_score,
    P.p_alive,
    P.clv,
    P.days_since_last_purchase,
)
LOGGED = (P.frequency, P.recency, P.T, P.monetary, P.total_spend, P.clv, P.days_since_last_purchase)
CATEGORICAL = (P.segment, P.lifecycle, P.value_tier, NbaFields.tier)


@dataclass
class UpliftDesign:
    """The feature encoding learned from the training profiles (numeric columns present, category levels)."""

    numeric: list[str] = field(default_factory=list)
    levels: dict[str, list[str]] = field(default_factory=dict)
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None

    def fit(self, frame: pl.DataFrame) -> UpliftDesign:
        """Learn which columns exist, their category levels and the standardisation; returns ``self``."""
        # a column the profiles lack, or hold no value of, carries nothing to learn from
        self.numeric = [c for c in NUMERIC if c in frame.columns and frame.get_column(c).null_count() < frame.height]
        levels = {
            c: sorted(str(v) for v in frame.get_column(c).drop_nulls().unique().to_list())
            for c in CATEGORICAL
            if c in frame.columns
        }
        self.levels = {c: v for c, v in levels.items() if v}
        raw = self._numeric(frame)
        with np.errstate(all="ignore"):
            self.mean_ = np.nan_to_num(np.nanmean(raw, axis=0))
            self.scale_ = np.nan_to_num(np.nanstd(raw, axis=0))
        self.scale_[~(self.scale_ > 0)] = 1.0
        return self

    def _numeric(self, frame: pl.DataFrame) -> np.ndarray:
        cols = []
        for c in self.numeric:
            x = (
                frame.get_column(c).cast(pl.Float64, strict=False).to_numpy()
                if c in frame.columns
                else np.full(frame.height, np.nan)
            )
            cols.append(np.log1p(np.maximum(x, 0.0)) if c in LOGGED else x)
        return np.column_stack(cols) if cols else np.zeros((frame.height, 0))

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """Return the design matrix of ``frame`` (columns as learned in :meth:`fit`)."""
        assert self.mean_ is not None and self.scale_ is not None, "fit the design first"
        z = (self._numeric(frame) - self.mean_) / self.scale_
        parts = [np.where(np.isfinite(z), z, 0.0)]
        for c, values in self.levels.items():
            col = frame.get_column(c).cast(pl.String) if c in frame.columns else pl.Series([None] * frame.height)
            parts.append(np.column_stack([(col == v).fill_null(False).to_numpy() for v in values]).astype(float))
        return np.hstack(parts)


@dataclass
class TwoModelUplift:
    """P(y | treated, x) and P(y | control, x) from two classifiers; ``fit`` learns ``design_``, ``treated_``,
    ``control_`` and returns ``self``."""

    learner: str = "logistic"
    c: float = 0.5
    seed: int = 0
    design_: UpliftDesign | None = None
    treated_: object | None = None
    control_: object | None = None

    def _classifier(self) -> object:
        if self.learner == "gbm":
            import lightgbm

            return lightgbm.LGBMClassifier(
                n_estimators=150, learning_rate=0.05, num_leaves=7, min_child_samples=40,
                random_state=self.seed, deterministic=True, n_jobs=1, verbose=-1,
            )  # fmt: skip
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.c, max_iter=2000)

    def fit(self, frame: pl.DataFrame, treated: Sequence[bool] | np.ndarray, y: np.ndarray) -> TwoModelUplift:
        """Fit on profiles ``frame`` with the treatment flag and outcome per row.

        Raises ``DataError`` when either group is empty or has only one outcome.
        """
        t = np.asarray(treated, dtype=bool)
        y = np.asarray(y, dtype=np.float64)
        if len(t) != frame.height or len(y) != frame.height:
            raise DataError("uplift fit: profiles, treatment flags and outcomes must have the same length")
        for name, mask in (("treated", t), ("control", ~t)):
            if mask.sum() == 0 or len(np.unique(y[mask])) < 2:
                raise DataError(
                    f"uplift fit: the {name} group needs customers who converted and customers who did not "
                    f"({int(mask.sum())} customers, {int(y[mask].sum())} converted)"
                )
        self.design_ = UpliftDesign().fit(frame)
        x = self.design_.transform(frame)
        self.treated_ = self._classifier().fit(x[t], y[t])  # type: ignore[attr-defined]
        self.control_ = self._classifier().fit(x[~t], y[~t])  # type: ignore[attr-defined]
        return self

    def predict(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(P(y | treated), P(y | control))`` per row of ``frame``."""
        if self.design_ is None:
            raise DataError("uplift model is not fitted")
        x = self.design_.transform(frame)
        return (
            self.treated_.predict_proba(x)[:, 1],  # type: ignore[attr-defined]
            self.control_.predict_proba(x)[:, 1],  # type: ignore[attr-defined]
        )

    def uplift(self, frame: pl.DataFrame) -> np.ndarray:
        """Return P(y | treated) − P(y | control) per row."""
        p_t, p_c = self.predict(frame)
        return p_t - p_c


def converted_in_window(
    events: pl.DataFrame, customer_ids: Sequence[str], offers: Sequence[str], window_days: int
) -> np.ndarray:
    """Return, per customer, whether they bought (a ``purchase`` event) within the experiment's attribution window:
    from its first logged impression of one of ``offers`` (any offer when empty) to ``window_days`` later.

    One window for both arms (the holdout sees no impression, so the experiment's start stands for it): a purchase
    before the experiment, or long after its window, is not an outcome of it. Raises ``DataError`` when the events
    carry no timestamps or no impression of the experiment's offers.
    """
    from recsys.nba.response_history import utc_times

    if "timestamp" not in events.columns:
        raise DataError("uplift: the events need a 'timestamp' to bound the outcome by the attribution window")
    is_shown = pl.col("type") == "impression"
    if offers:
        is_shown = is_shown & pl.col("offer_id").is_in(list(offers))
    # the rows that matter, numbered as in ``events`` (1-based) so that an error names the event's own row
    relevant = events.with_row_index("_event", offset=1).filter(is_shown | (pl.col("type") == "purchase"))
    if not (relevant.get_column("type") == "impression").any():
        raise DataError(
            "uplift: no impression of the experiment's offers in the events, so the experiment's window has no "
            "start; sync the service's events (`centric events sync`) or pass the experiment's events with --events"
        )
    typed = relevant.select(
        pl.col("customer_id").cast(pl.String),
        utc_times(relevant, "timestamp", "events").alias("timestamp"),
        (pl.col("type") == "impression").alias("_shown"),
        "_event",
    )
    bad = typed.filter(pl.col("customer_id").is_null() | pl.col("timestamp").is_null())
    if bad.height:
        raise DataError(
            f"uplift: {bad.height:,} impression or purchase event(s) lack a customer_id or a readable timestamp "
            f"(event rows {bad.get_column('_event').head(5).to_list()}); the attribution window needs both: fix or "
            "drop them"
        )
    start = typed.filter(pl.col("_shown")).get_column("timestamp").min()
    until = start + dt.timedelta(days=window_days)  # type: ignore[operator]
    bought = typed.filter(~pl.col("_shown") & (pl.col("timestamp") >= start) & (pl.col("timestamp") < until))
    buyers = set(bought.get_column("customer_id").to_list())
    return np.fromiter((str(c) in buyers for c in customer_ids), dtype=np.float64, count=len(customer_ids))
