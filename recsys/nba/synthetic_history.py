"""A seeded synthetic response history with a known acceptance mechanism (tests and the fit-time benchmark).

Each customer has a hidden trait ``u ~ N(0, 1)``: active customers (high ``u``) buy more often and accept more
offers. P(accept) = sigmoid(``base`` + 0.9·u + kind effect). Redemptions happen within 7 days of exposure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys.nba.response_history import ResponseHistory

KIND_EFFECT = {"discount": 0.6, "points": 0.0, "free_shipping": -0.6}
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SyntheticHistory:
    """The history, purchases in the standard columns, and each exposure's true P(accept)."""

    history: ResponseHistory
    transactions: pl.DataFrame
    true_p: np.ndarray


def synthetic_history(
    exposures: int, customers: int, *, offers: int = 12, days: int = 120, base: float = -2.2, seed: int = 0
) -> SyntheticHistory:
    """Return a history of ``exposures`` exposures over ``days`` days (purchases span the same days)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=customers)
    kinds = np.asarray(list(KIND_EFFECT))[np.arange(offers) % len(KIND_EFFECT)]
    n_buys = rng.poisson(np.exp(1.5 + 0.7 * u) * days / 60)
    buyer = np.repeat(np.arange(customers), n_buys)
    buy_t = rng.uniform(-60, days, buyer.size)  # purchases start 60 days before the first exposure
    items = rng.integers(0, 500, buyer.size)
    cust = rng.integers(0, customers, exposures)
    offer = rng.integers(0, offers, exposures)
    start_day = np.sort(rng.integers(0, days, exposures))
    effect = np.asarray([KIND_EFFECT[k] for k in kinds])[offer]
    p = 1 / (1 + np.exp(-(base + 0.9 * u[cust] + effect)))
    accepted = rng.random(exposures) < p
    seconds = start_day * 86_400 + rng.integers(0, 86_400, exposures)
    ids = np.char.add("c", np.arange(customers).astype(str))
    offer_ids = np.char.add("o", np.arange(offers).astype(str))
    start = START
    starts = pl.lit(start) + pl.duration(seconds=pl.lit(pl.Series(seconds)))
    exp_frame = pl.DataFrame({"customer_id": ids[cust], "offer_id": offer_ids[offer]}).with_columns(
        pl.lit(None, dtype=pl.String).alias("channel"),
        starts.alias("start"),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("end"),
    )
    red_seconds = seconds[accepted] + rng.integers(60, 7 * 86_400, int(accepted.sum()))
    outcomes = pl.DataFrame({"customer_id": ids[cust[accepted]], "offer_id": offer_ids[offer[accepted]]}).with_columns(
        (pl.lit(start) + pl.duration(seconds=pl.lit(pl.Series(red_seconds)))).alias("timestamp")
    )
    offer_items = pl.DataFrame(
        {
            "offer_id": np.repeat(offer_ids, 20),
            "item_id": np.char.add("i", rng.integers(0, 500, offers * 20).astype(str)),
        }
    ).unique()
    offer_kinds = pl.DataFrame({"offer_id": offer_ids, "kind": kinds})
    transactions = pl.DataFrame(
        {
            "customer_id": ids[buyer],
            "item_id": np.char.add("i", items.astype(str)),
            "order_id": np.char.add("b", np.arange(buyer.size).astype(str)),
            "amount": np.round(rng.gamma(2.0, 15.0, buyer.size), 2),
        }
    ).with_columns(
        (pl.lit(start) + pl.duration(seconds=pl.lit(pl.Series(buy_t * 86_400).cast(pl.Int64)))).alias("timestamp")
    )
    history = ResponseHistory(
        exp_frame.with_columns(pl.col("start").cast(pl.Datetime("us", "UTC"))),
        outcomes.with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC"))),
        offer_items,
        offer_kinds,
        "synthetic",
    )
    return SyntheticHistory(history, transactions, p)
