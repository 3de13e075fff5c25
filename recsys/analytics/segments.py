"""RFM quintile scores and named segments from a configurable rule table.

Scores are 1..5 quintiles over the customers analysed: ``r_score`` from days since the last purchase (recent = 5),
``f_score`` from purchase days (``orders``), ``m_score`` from total spend. The segment is the first rule in
:data:`DEFAULT_RULES` whose R and F ranges contain the customer's scores (the common 11-segment RFM map).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from recsys.columns import ProfileColumns as P
from recsys.exceptions import ConfigError


@dataclass(frozen=True)
class SegmentRule:
    """A segment: a name and inclusive ranges of R and F scores."""

    name: str
    r: tuple[int, int]
    f: tuple[int, int]


DEFAULT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("Champions", (5, 5), (4, 5)),
    SegmentRule("Loyal", (3, 4), (4, 5)),
    SegmentRule("Potential Loyalist", (4, 5), (2, 3)),
    SegmentRule("New", (5, 5), (1, 1)),
    SegmentRule("Promising", (4, 4), (1, 1)),
    SegmentRule("Need Attention", (3, 3), (3, 3)),
    SegmentRule("About to Sleep", (3, 3), (1, 2)),
    SegmentRule("Can't Lose", (1, 2), (5, 5)),
    SegmentRule("At Risk", (1, 2), (3, 4)),
    SegmentRule("Lost", (1, 1), (1, 1)),
    SegmentRule("Hibernating", (1, 2), (1, 2)),
)
FALLBACK_SEGMENT = "Other"


def quintile(column: str, *, descending: bool = False) -> pl.Expr:
    """Return a 1..5 score expression: the customer's rank quintile (ties share the lowest rank of their group).

    With "min" ranks a tied group scores by the share of customers strictly below it, so the lowest value always
    scores 1 (one-time buyers are F = 1 even when they are half the customers; "average" put them at F = 2).
    """
    rank = pl.col(column).rank("min", descending=descending)
    n = pl.len()
    return ((rank - 1) * 5 / n).floor().clip(0, 4).cast(pl.Int8) + 1


def add_rfm_scores(summary: pl.DataFrame, rules: tuple[SegmentRule, ...] = DEFAULT_RULES) -> pl.DataFrame:
    """Return ``summary`` with ``r_score``, ``f_score``, ``m_score`` and ``segment``.

    Needs ``days_since_last_purchase``, ``orders``, ``total_spend``; raises ``ConfigError`` for an invalid rule.
    """
    for rule in rules:
        if not all(1 <= lo <= hi <= 5 for lo, hi in (rule.r, rule.f)):
            raise ConfigError(f"segment rule {rule.name!r}: score ranges must satisfy 1 <= low <= high <= 5")
    scored = summary.with_columns(
        quintile(P.days_since_last_purchase, descending=True).alias(P.r_score),
        quintile(P.orders).alias(P.f_score),
        quintile(P.total_spend).alias(P.m_score),
    )
    expr: Any = pl  # a when/then chain: polars types each link differently (Then, ChainedThen)
    for rule in rules:
        cond = pl.col(P.r_score).is_between(*rule.r) & pl.col(P.f_score).is_between(*rule.f)
        expr = expr.when(cond).then(pl.lit(rule.name))
    return scored.with_columns(expr.otherwise(pl.lit(FALLBACK_SEGMENT)).alias(P.segment))
