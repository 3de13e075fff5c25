"""Value tiers by CLV: the top 1 %, the next up to 10 %, and the rest (cut-offs configurable)."""

from __future__ import annotations

from typing import Any

import polars as pl

from recsys.columns import ProfileColumns as P
from recsys.exceptions import ConfigError

DEFAULT_TIERS: tuple[tuple[str, float], ...] = (("top_1", 0.01), ("top_10", 0.10))
REST = "rest"


def value_tier(tiers: tuple[tuple[str, float], ...] = DEFAULT_TIERS) -> pl.Expr:
    """Return the ``value_tier`` expression: the first tier whose top share (by CLV rank) contains the customer.

    Raises ``ConfigError`` unless shares increase strictly within (0, 1].
    """
    shares = [share for _, share in tiers]
    if not all(0 < s <= 1 for s in shares) or shares != sorted(set(shares)):
        raise ConfigError(f"value tiers need increasing shares in (0, 1], got {shares}")
    # rank 1 = highest CLV; "ordinal" so that ties still fill exactly the top share
    position = pl.col(P.clv).rank("ordinal", descending=True) / pl.len()
    expr: Any = pl  # a when/then chain: polars types each link differently (Then, ChainedThen)
    for name, share in tiers:
        expr = expr.when(position <= share).then(pl.lit(name))
    return expr.otherwise(pl.lit(REST)).alias(P.value_tier)
