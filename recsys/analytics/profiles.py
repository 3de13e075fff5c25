"""The customer profile: one row per customer joining summary, RFM segment, the purchase model (BG/NBD, MBG/NBD or
Pareto/NBD), Gamma-Gamma, CLV, lifecycle, value tier and favourite categories (columns =
``recsys.columns.ProfileColumns``; ``expected_purchases`` and ``clv`` are over ``ClvConfig.horizon_days``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from recsys.analytics.btyd import PurchaseModel, check_model_name, make_model
from recsys.analytics.clv import ClvConfig, customer_lifetime_value
from recsys.analytics.gamma_gamma import GammaGammaModel
from recsys.analytics.lifecycle import LifecycleConfig, lifecycle_stage
from recsys.analytics.segments import DEFAULT_RULES, SegmentRule, add_rfm_scores
from recsys.analytics.summary import as_utc_day, rfm_summary, unit_days
from recsys.analytics.tiers import DEFAULT_TIERS, value_tier
from recsys.columns import Columns
from recsys.columns import ProfileColumns as P
from recsys.exceptions import ConfigError, DataError

PROFILE_COLUMNS = tuple(v for k, v in vars(P).items() if not k.startswith("_") and isinstance(v, str))
TOP_CATEGORIES = 3


@dataclass(frozen=True)
class AnalyticsConfig:
    """Every analytics option in one place, with the documented defaults of each part."""

    time_unit: str = "week"
    model: str = "mbgnbd"  # bgnbd | mbgnbd | pnbd (``centric analyze`` chooses on a holdout; see selection.py)
    clv: ClvConfig = field(default_factory=ClvConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    segment_rules: tuple[SegmentRule, ...] = DEFAULT_RULES
    tiers: tuple[tuple[str, float], ...] = DEFAULT_TIERS

    def __post_init__(self) -> None:
        if check_model_name(self.model) == "auto":
            raise ConfigError("AnalyticsConfig.model must name a model; 'auto' is resolved by the analyze job")


@dataclass
class AnalyticsResult:
    """Profiles (one row per customer) and the fitted models."""

    profiles: pl.DataFrame
    model: PurchaseModel
    gamma_gamma: GammaGammaModel | None
    as_of: datetime


def top_categories(transactions: pl.DataFrame, catalog: pl.DataFrame | None, n: int = TOP_CATEGORIES) -> pl.DataFrame:
    """Return ``customer_id``, ``top_categories`` (by spend, then lines; empty lists without a catalog).

    Customers whose items are all missing from the catalog get no row (the caller fills an empty list).
    """
    if catalog is None or Columns.category not in catalog.columns:
        return (
            transactions.select(Columns.customer_id)
            .unique()
            .with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(P.top_categories))
        )
    cats = catalog.select(Columns.item_id, Columns.category).unique(Columns.item_id)
    return (
        transactions.lazy()
        .join(cats.lazy(), on=Columns.item_id, how="inner")
        .filter(pl.col(Columns.category).is_not_null())
        .group_by(Columns.customer_id, Columns.category)
        .agg(pl.col(Columns.amount).sum().alias("_spend"), pl.len().alias("_lines"))
        .sort([Columns.customer_id, "_spend", "_lines", Columns.category], descending=[False, True, True, False])
        .group_by(Columns.customer_id, maintain_order=True)
        .agg(pl.col(Columns.category).head(n).alias(P.top_categories))
        .collect()
    )


def build_profiles(
    transactions: pl.DataFrame,
    *,
    catalog: pl.DataFrame | None = None,
    calibration_end: date | datetime | str | None = None,
    config: AnalyticsConfig = AnalyticsConfig(),
    model: PurchaseModel | None = None,
) -> AnalyticsResult:
    """Fit ``config.model`` and Gamma-Gamma on the calibration summary and return the profiles "as of" its end.

    ``model``, when given, is the (unfitted, e.g. warm-started) purchase model to fit instead of ``config.model``.

    Raises ``DataError`` when there is nothing to analyse.
    """
    summary = rfm_summary(transactions, calibration_end, time_unit=config.time_unit)
    as_of = as_utc_day(
        summary.select(pl.col(P.last_purchase).max()).item() if calibration_end is None else calibration_end
    )
    x, t_x, T = (summary[c].to_numpy().astype(float) for c in (P.frequency, P.recency, P.T))
    bg = (model or make_model(config.model)).fit(x, t_x, T)
    monetary = summary[P.monetary].to_numpy()
    gg: GammaGammaModel | None
    try:
        gg = GammaGammaModel().fit(x, monetary)
        spend = gg.conditional_expected_spend(x, monetary)
    except DataError:  # too few repeat customers: fall back to the observed mean spend per purchase day
        gg = None
        mean = float(summary[P.total_spend].sum()) / max(float(summary[P.orders].sum()), 1.0)
        spend = np.where(x > 0, monetary, mean)
    clv, expected = customer_lifetime_value(
        bg, x, t_x, T, spend, unit_days=unit_days(config.time_unit), config=config.clv
    )
    p_alive = bg.p_alive(x, t_x, T)
    if not (np.isfinite(clv).all() and np.isfinite(expected).all() and np.isfinite(p_alive).all()):
        # e.g. a handful of customers drive a parameter to its bound, where the hypergeometric terms overflow
        raise DataError(
            f"the {bg.label} fit on these data ({len(x)} customers, {int((x > 0).sum())} with repeat purchases) "
            "gives non-finite predictions; use more customers or a longer calibration period"
        )
    profiles = (
        summary.with_columns(
            pl.Series(P.p_alive, p_alive),
            pl.Series(P.churn_risk, 1.0 - p_alive),
            pl.Series(P.expected_purchases, expected),
            pl.Series(P.clv, clv),
            (pl.lit(as_of) - pl.col(P.last_purchase)).dt.total_days().cast(pl.Int64).alias(P.days_since_last_purchase),
            pl.lit(as_of).alias("_as_of"),
        )
        .pipe(add_rfm_scores, config.segment_rules)
        .with_columns(lifecycle_stage(config.lifecycle), value_tier(config.tiers))
    )
    cal_tx = transactions.filter(pl.col(Columns.timestamp) < as_of + timedelta(days=1))
    cats = top_categories(cal_tx, catalog)
    profiles = profiles.join(cats, on=Columns.customer_id, how="left").with_columns(
        pl.col(P.top_categories).fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )
    return AnalyticsResult(profiles.select(PROFILE_COLUMNS), bg, gg, as_of)


def segment_top_items(transactions: pl.DataFrame, profiles: pl.DataFrame, n: int = 50) -> pl.DataFrame:
    """Return ``segment``, ``item_id``, ``rank`` (Int32, 1-based), ``score`` (share of the segment's customers who
    bought the item, Float32): the most bought items per RFM segment, the service's per-segment fallback lists."""
    seg = profiles.select(Columns.customer_id, P.segment)
    sizes = seg.group_by(P.segment).agg(pl.len().alias("_n"))
    return (
        transactions.lazy()
        .select(Columns.customer_id, Columns.item_id)
        .unique()
        .join(seg.lazy(), on=Columns.customer_id, how="inner")
        .group_by(P.segment, Columns.item_id)
        .agg(pl.len().alias("_buyers"))
        .join(sizes.lazy(), on=P.segment)
        .with_columns((pl.col("_buyers") / pl.col("_n")).cast(pl.Float32).alias(Columns.score))
        .sort([P.segment, Columns.score, Columns.item_id], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over(P.segment).cast(pl.Int32).alias(Columns.rank))
        .filter(pl.col(Columns.rank) <= n)
        .select(P.segment, Columns.item_id, Columns.rank, Columns.score)
        .collect()
    )
