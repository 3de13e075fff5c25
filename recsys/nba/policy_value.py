"""The value a candidate offer policy would have had, estimated from the service's logged impressions.

**Logged data.** Each ``impression`` event with an ``offer_id`` is one shown slot: context ``x`` = (customer,
channel), action ``a`` = the offer, ``p_shown`` = the logging policy's probability of including ``a`` in its slate
(an impression without it was served greedily: probability 1). Its reward ``r`` is 1 when the customer redeemed
that offer within the attribution window after the impression, else 0.

**Candidate.** A decisions table (``decisions.parquet`` of a new ``centric decide``, or the logging snapshot's own)
and an exploration policy per channel (greedy by default): for context ``x`` its candidates are that customer's
decisions on that channel in rank order, and the policy gives each the probability of being in a slate of ``k``
(``recsys.nba.exploration.inclusion_probabilities``; live contact caps are not replayed). ``k`` should be the slate
size the logs were served with (the offers call's ``k``).

**Value** = expected redemptions per shown slot. With ``π(a|x) = inclusion(a|x) / k`` the weight of a logged slot is
``w = inclusion_new(a|x) / p_shown`` (``k`` cancels), and with a reward model ``q̂`` (the candidate decisions'
calibrated ``p_accept``; for a logged pair the candidate lacks, the offer's logged redemption rate) the doubly robust
term is ``Σ_a π_new(a|x)·q̂(x, a) + w·(r − q̂(x, a))``. The estimators and their bootstrap intervals are in
``recsys.nba.off_policy``. Assumptions: the reward of a slot depends on its offer, not on the rest of the slate;
the logging policy gave every offer the candidate may show a positive probability (support).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from recsys.exceptions import DataError
from recsys.nba.exploration import GREEDY_POLICY, ExplorationPolicy, inclusion_probabilities
from recsys.nba.off_policy import Estimate, estimate
from recsys.store.base import OfferDecision

CONTEXT = ("customer_id", "channel")


def logged_slots(events: pl.DataFrame, window_days: int = 14) -> pl.DataFrame:
    """Return one row per logged offer impression: ``customer_id, channel, offer_id, timestamp, p_shown, policy,
    version, reward`` (reward: a ``redeem`` of that offer by that customer in ``[timestamp, + window_days)``).

    Raises ``DataError`` when there are no offer impressions, a timestamp or probability does not parse, a logged
    probability is outside (0, 1], or an impression of an exploring policy lacks its probability (only a greedy
    one may omit it: it is 1).
    """
    frame = events
    for name, dtype in (
        ("offer_id", pl.String),
        ("channel", pl.String),
        ("p_shown", pl.Float64),
        ("policy", pl.String),
        ("version", pl.String),
    ):
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    unlogged = frame.filter(
        (pl.col("type") == "impression")
        & pl.col("offer_id").is_not_null()
        & pl.col("p_shown").is_null()
        & pl.col("policy").is_not_null()
        & (pl.col("policy") != "greedy")
    )
    if unlogged.height:
        raise DataError(
            f"{unlogged.height:,} impression(s) name the exploring policy {unlogged.get_column('policy')[0]!r} but "
            "log no p_shown (first: customer "
            f"{unlogged.get_column('customer_id')[0]!r}, offer {unlogged.get_column('offer_id')[0]!r}); "
            "only a greedy impression may omit it: echo the offers answer's p_shown with every impression"
        )
    ts = pl.col("timestamp")
    if frame.schema["timestamp"] == pl.String:
        ts = ts.str.to_datetime(time_zone="UTC", strict=False)
    parsed = frame.with_row_index("_line", offset=1).with_columns(
        ts.cast(pl.Datetime("us", "UTC")).alias("_timestamp"),
        pl.col("p_shown").cast(pl.Float64, strict=False).alias("_p_shown"),
    )
    for column in ("timestamp", "p_shown"):
        # a value that does not parse would be read as missing: no reward, or probability 1
        bad = parsed.filter(pl.col(column).is_not_null() & pl.col(f"_{column}").is_null())
        if bad.height:
            first = bad.row(0, named=True)
            raise DataError(
                f"{bad.height:,} event(s) have an unreadable {column!r} (first: event {first['_line']}, value "
                f"{first[column]!r}); write timestamps as ISO 8601 and p_shown as a number in (0, 1]"
            )
    frame = parsed.drop("timestamp", "p_shown", "_line").rename({"_timestamp": "timestamp", "_p_shown": "p_shown"})
    shown = (
        frame.filter((pl.col("type") == "impression") & pl.col("offer_id").is_not_null())
        .select(
            pl.col("customer_id").cast(pl.String),
            pl.col("channel").cast(pl.String).fill_null("app"),
            pl.col("offer_id").cast(pl.String),
            "timestamp",
            pl.col("p_shown").cast(pl.Float64, strict=False).fill_null(1.0),
            pl.col("policy").cast(pl.String).fill_null("greedy"),
            pl.col("version").cast(pl.String),
        )
        .with_row_index("_slot")
    )
    if shown.is_empty():
        raise DataError("no offer impressions in the logged events: nothing to evaluate a policy on")
    bad = shown.filter(~((pl.col("p_shown") > 0) & (pl.col("p_shown") <= 1)))
    if bad.height:
        raise DataError(
            f"{bad.height:,} impression(s) log a p_shown outside (0, 1] (first: {bad.get_column('p_shown')[0]}); "
            "an impression must log the probability from the offers answer"
        )
    redeemed = frame.filter((pl.col("type") == "redeem") & pl.col("offer_id").is_not_null()).select(
        pl.col("customer_id").cast(pl.String), pl.col("offer_id").cast(pl.String), pl.col("timestamp").alias("_red")
    )
    window = dt.timedelta(days=window_days)
    hits = (
        shown.select("_slot", "customer_id", "offer_id", "timestamp")
        .join(redeemed, on=["customer_id", "offer_id"], how="inner")
        .filter((pl.col("_red") >= pl.col("timestamp")) & (pl.col("_red") < pl.col("timestamp") + window))
        .select("_slot")
        .unique()
        .with_columns(pl.lit(1.0).alias("reward"))
    )
    return (
        shown.join(hits, on="_slot", how="left")
        .with_columns(pl.col("reward").fill_null(0.0))
        .sort("_slot")
        .drop("_slot")
    )


@dataclass(frozen=True)
class PolicyValue:
    """What ``centric report policy`` reports: the logging policy's observed value and the candidate's estimates."""

    slots: int
    contexts: int
    logging_policies: dict[str, int]
    observed: Estimate
    estimates: list[Estimate]
    overlap: float  # share of logged slots whose offer the candidate could show (positive candidate probability)
    mean_weight: float  # mean importance weight; far from 1 means the candidate is far from the logging policy

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "slots": self.slots,
            "contexts": self.contexts,
            "logging_policies": self.logging_policies,
            "observed": vars(self.observed),
            "estimates": [vars(e) for e in self.estimates],
            "overlap": self.overlap,
            "mean_weight": self.mean_weight,
        }


def candidate_terms(
    slots: pl.DataFrame,
    decisions: pl.DataFrame,
    policies: Mapping[str, ExplorationPolicy] | None = None,
    *,
    k: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return, per logged slot, the candidate's inclusion probability of the logged offer, ``q̂`` of the logged
    offer, and ``Σ_a π_new(a|x)·q̂(x, a)`` (see the module docstring). Thompson probabilities are the service's
    deterministic estimate (the same candidates give the probability the service would log)."""
    policies = policies or {}
    rate = slots.group_by("offer_id").agg(pl.col("reward").mean().alias("_rate"))
    overall = float(np.mean(slots.get_column("reward").to_numpy()))
    wanted = slots.select(CONTEXT).unique()
    cand = (
        decisions.select(
            pl.col("customer_id").cast(pl.String),
            pl.col("channel").cast(pl.String),
            pl.col("offer_id").cast(pl.String),
            pl.col("rank").cast(pl.Int64),
            pl.col("expected_value").cast(pl.Float64),
            pl.col("p_accept").cast(pl.Float64),
        )
        .join(wanted, on=list(CONTEXT), how="semi")
        .sort("customer_id", "channel", "rank", "offer_id")
    )
    incl = np.zeros(cand.height)
    bounds = cand.with_row_index("_i").group_by(CONTEXT, maintain_order=True).agg(pl.col("_i").min(), pl.len())
    greedy_like = all(p.kind != "thompson" for p in policies.values())
    if greedy_like:
        # closed forms, vectorised: rank position within the context, context size, the channel's epsilon
        pos = cand.with_columns(pl.int_range(pl.len()).over(CONTEXT).alias("_pos"), pl.len().over(CONTEXT).alias("_n"))
        eps = np.asarray([policies.get(c, GREEDY_POLICY) for c in pos.get_column("channel").to_list()], dtype=object)
        e = np.asarray([p.epsilon if p.kind == "epsilon_greedy" else 0.0 for p in eps], dtype=np.float64)
        position, n = pos.get_column("_pos").to_numpy(), pos.get_column("_n").to_numpy()
        size = np.minimum(k, n)
        incl = (1 - e) * (position < size) + e * size / n
    else:
        for first, length, channel in zip(
            bounds.get_column("_i").to_list(),
            bounds.get_column("len").to_list(),
            bounds.get_column("channel").to_list(),
        ):
            part = cand.slice(first, length)
            offers = [OfferDecision.from_row(r) for r in part.iter_rows(named=True)]
            incl[first : first + length] = inclusion_probabilities(offers, k, policies.get(channel, GREEDY_POLICY))
    cand = cand.with_columns(pl.Series("_incl", incl))
    per_context = cand.group_by(CONTEXT).agg(
        ((pl.col("_incl") * pl.col("p_accept")).sum() / pl.col("_incl").sum()).alias("_q_new")
    )
    joined = (
        slots.with_row_index("_slot")
        .join(cand.select(*CONTEXT, "offer_id", "_incl", "p_accept"), on=[*CONTEXT, "offer_id"], how="left")
        .join(per_context, on=list(CONTEXT), how="left")
        .join(rate, on="offer_id", how="left")
        .sort("_slot")
    )
    p_new = joined.get_column("_incl").fill_null(0.0).to_numpy()
    q_logged = joined.select(pl.coalesce("p_accept", "_rate", pl.lit(overall))).to_series().to_numpy()
    q_new = joined.get_column("_q_new").fill_null(0.0).to_numpy()  # a context the candidate has no offer for: 0
    return p_new, q_logged, q_new


def evaluate_policy(
    slots: pl.DataFrame,
    decisions: pl.DataFrame,
    policies: Mapping[str, ExplorationPolicy] | None = None,
    *,
    k: int = 1,
    n_boot: int = 500,
    seed: int = 0,
) -> PolicyValue:
    """Return IPS, SNIPS and DR estimates of the candidate (with bootstrap intervals) and the observed value of the
    logging policy (the mean logged reward, bootstrap interval); the bootstrap resamples customers. Raises
    ``DataError`` for empty inputs or when no logged impression shows an offer the candidate could show."""
    if decisions.is_empty():
        raise DataError("the candidate decisions are empty: nothing to evaluate")
    reward = slots.get_column("reward").to_numpy().astype(np.float64)
    p_log = slots.get_column("p_shown").to_numpy().astype(np.float64)
    p_new, q_logged, q_new = candidate_terms(slots, decisions, policies, k=k)
    if not np.any(p_new > 0):
        raise DataError(
            f"none of the {len(reward):,} logged impressions shows an offer the candidate would show that customer "
            "on that channel (no overlap): the logs say nothing about this candidate. Pass decisions for the logged "
            "customers, or log with exploration on (CENTRIC_EXPLORATION) so the candidate's offers are shown too"
        )
    # the bootstrap resamples customers: one customer's impressions (a slate's k slots, their visits) are not
    # independent, and resampling them one by one would give too narrow intervals
    customers = slots.get_column("customer_id").fill_null("").to_numpy()
    estimates = estimate(reward, p_log, p_new, q_logged, q_new, n_boot=n_boot, seed=seed, groups=customers)
    ones = np.ones_like(reward)
    observed = estimate(reward, ones, ones, n_boot=n_boot, seed=seed, groups=customers)[0]
    return PolicyValue(
        slots=len(reward),
        contexts=slots.select(CONTEXT).n_unique(),
        logging_policies=dict(slots.group_by("policy").len().sort("policy").iter_rows()),
        observed=Estimate("observed", observed.value, observed.low, observed.high),
        estimates=estimates,
        overlap=float(np.mean(p_new > 0)),
        mean_weight=float(np.mean(p_new / p_log)),
    )
