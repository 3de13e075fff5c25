"""Churn risk, at-risk lists and lifecycle stages.

Stages (first match wins), with the default thresholds of :class:`LifecycleConfig`:

* ``prospect`` — known customer without any purchase;
* ``new`` — first purchase within ``new_days`` (30) of the as-of day;
* ``lapsed`` — no purchase for more than ``lapsed_days`` (180), or P(alive) below ``lapsed_p_alive`` (0.10);
* ``reactivated`` — last purchase within ``active_days`` (60) after a gap longer than ``reactivation_gap_days`` (120);
* ``at_risk`` — churn risk (1 − P(alive)) at least ``at_risk_churn`` (0.50), or no purchase for more than
  ``active_days`` (60);
* ``active`` — everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recsys.analytics.summary import PREVIOUS_PURCHASE
from recsys.columns import Columns
from recsys.columns import ProfileColumns as P
from recsys.exceptions import ConfigError

STAGES = ("prospect", "new", "active", "at_risk", "lapsed", "reactivated")


@dataclass(frozen=True)
class LifecycleConfig:
    """Lifecycle thresholds (days and probabilities); see the module docstring for the rules."""

    new_days: int = 30
    active_days: int = 60
    lapsed_days: int = 180
    reactivation_gap_days: int = 120
    at_risk_churn: float = 0.50
    lapsed_p_alive: float = 0.10

    def __post_init__(self) -> None:
        if not (self.new_days > 0 and 0 < self.active_days <= self.lapsed_days):
            raise ConfigError("lifecycle thresholds must satisfy 0 < new_days and 0 < active_days <= lapsed_days")
        if not (0.0 <= self.at_risk_churn <= 1.0 and 0.0 <= self.lapsed_p_alive <= 1.0):
            raise ConfigError("lifecycle probabilities at_risk_churn and lapsed_p_alive must be in [0, 1]")


def lifecycle_stage(config: LifecycleConfig = LifecycleConfig()) -> pl.Expr:
    """Return the ``lifecycle`` expression; needs ``orders``, ``first_purchase``, ``days_since_last_purchase``,
    ``p_alive``, ``churn_risk``, ``last_purchase``, ``previous_purchase`` and an ``_as_of`` datetime column."""
    days_since = pl.col(P.days_since_last_purchase)
    tenure = (pl.col("_as_of") - pl.col(P.first_purchase)).dt.total_days()
    gap = (pl.col(P.last_purchase) - pl.col(PREVIOUS_PURCHASE)).dt.total_days()
    return (
        pl.when(pl.col(P.orders).fill_null(0) == 0)
        .then(pl.lit("prospect"))
        .when(tenure <= config.new_days)
        .then(pl.lit("new"))
        .when((days_since > config.lapsed_days) | (pl.col(P.p_alive) < config.lapsed_p_alive))
        .then(pl.lit("lapsed"))
        .when((days_since <= config.active_days) & (gap > config.reactivation_gap_days))
        .then(pl.lit("reactivated"))
        .when((pl.col(P.churn_risk) >= config.at_risk_churn) | (days_since > config.active_days))
        .then(pl.lit("at_risk"))
        .otherwise(pl.lit("active"))
        .alias(P.lifecycle)
    )


def at_risk_customers(profiles: pl.DataFrame, *, min_churn: float = 0.5, limit: int | None = None) -> pl.DataFrame:
    """Return customers with churn risk >= ``min_churn``, most valuable first (by CLV), to target with win-back."""
    out = profiles.filter(pl.col(P.churn_risk) >= min_churn).sort(P.clv, descending=True)
    out = out.select(Columns.customer_id, P.churn_risk, P.clv, P.segment, P.lifecycle, P.days_since_last_purchase)
    return out if limit is None else out.head(limit)
