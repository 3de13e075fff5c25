"""A seeded off-policy-evaluation simulation with a known truth (the coverage test and benchmark).

Each of ``customers`` contexts (channel ``app``) has ``offers`` candidates with a true P(redeem | shown)
``q ~ Beta(2, 12)``. The **logging** snapshot ranks them by a noisy estimate (``q`` + N(0, ``log_noise``)) and the
service serves them through ``recsys.nba.exploration.choose`` with the logging policy (epsilon-greedy by default),
so impressions carry the probability the real service would log. Redemptions are drawn from the true ``q`` of the
shown offer and logged a day later. The **candidate** is a new decisions table ranked by a better estimate
(``q`` + N(0, ``new_noise``)), served greedily (or with its own policy). Its true value per slot, over the logged
contexts, is ``mean_x Σ_a π_new(a|x)·q(x, a)`` — known exactly for greedy and epsilon-greedy candidates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys.nba.exploration import ExplorationPolicy, choose, inclusion_probabilities
from recsys.store.base import OfferDecision

START = dt.datetime(2027, 1, 4, 9, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Simulation:
    """Logged events, both decision tables and the true values per slot: the candidate policy on the candidate
    decisions (``true_value``) and on the logging decisions (``true_value_same_decisions``: "another exploration
    setting"), and the logging policy's own."""

    events: pl.DataFrame
    logging_decisions: pl.DataFrame
    candidate_decisions: pl.DataFrame
    true_value: float
    true_value_same_decisions: float
    logging_true_value: float


def _decisions(customer_ids: list[str], estimate: np.ndarray, offers: int) -> pl.DataFrame:
    order = np.argsort(-estimate, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, offers + 1)[None, :].repeat(len(customer_ids), 0), axis=1)
    p = np.clip(estimate, 0.005, 0.995)
    return pl.DataFrame(
        {
            "customer_id": np.repeat(customer_ids, offers),
            "channel": "app",
            "offer_id": np.tile([f"o{j}" for j in range(offers)], len(customer_ids)),
            "rank": rank.ravel(),
            "expected_value": p.ravel(),  # value 1 per redemption
            "p_accept": p.ravel(),
            "reason": "",
            "arm": "none",
        }
    )


def _rows(frame: pl.DataFrame, customer_ids: list[str]) -> dict[str, list[OfferDecision]]:
    by: dict[str, list[OfferDecision]] = {c: [] for c in customer_ids}
    for row in frame.iter_rows(named=True):
        by[row["customer_id"]].append(OfferDecision.from_row(row))
    return by


def simulate(
    seed: int,
    customers: int = 2000,
    offers: int = 5,
    *,
    logging: ExplorationPolicy | None = None,
    candidate: ExplorationPolicy | None = None,
    k: int = 1,
    log_noise: float = 0.08,
    new_noise: float = 0.02,
) -> Simulation:
    """Return a seeded simulation (see the module docstring)."""
    logging = logging or ExplorationPolicy("epsilon_greedy", epsilon=0.3)
    candidate = candidate or ExplorationPolicy()
    rng = np.random.default_rng(seed)
    q = rng.beta(2.0, 12.0, (customers, offers))
    ids = [f"c{i}" for i in range(customers)]
    logging_decisions = _decisions(ids, q + rng.normal(0, log_noise, q.shape), offers)
    candidate_decisions = _decisions(ids, q + rng.normal(0, new_noise, q.shape), offers)
    logged, new = _rows(logging_decisions, ids), _rows(candidate_decisions, ids)
    events: list[dict[str, object]] = []
    truths = np.zeros(3)
    for i, cid in enumerate(ids):
        when = START + dt.timedelta(minutes=i)
        for shown in choose(logged[cid], k, logging, rng):
            j = int(shown.decision.offer_id[1:])
            events.append(
                {
                    "type": "impression",
                    "customer_id": cid,
                    "offer_id": shown.decision.offer_id,
                    "channel": "app",
                    "timestamp": when,
                    "p_shown": shown.probability,
                    "policy": logging.label,
                    "version": "log",
                }
            )
            if rng.random() < q[i, j]:
                events.append(
                    {
                        "type": "redeem",
                        "customer_id": cid,
                        "offer_id": shown.decision.offer_id,
                        "channel": "app",
                        "timestamp": when + dt.timedelta(days=1),
                        "p_shown": None,
                        "policy": None,
                        "version": None,
                    }
                )
        for t, (rows, policy) in enumerate(((new[cid], candidate), (logged[cid], candidate), (logged[cid], logging))):
            ranked = sorted(rows, key=lambda d: d.rank)
            draws = (
                policy
                if policy.kind != "thompson"
                else ExplorationPolicy("thompson", strength=policy.strength, draws=500)
            )
            incl = inclusion_probabilities(ranked, k, draws, np.random.default_rng(seed + 10_000 + i))
            truths[t] += float(np.dot(incl, [q[i, int(d.offer_id[1:])] for d in ranked]) / incl.sum())
    frame = pl.DataFrame(
        events,
        schema={
            "type": pl.String,
            "customer_id": pl.String,
            "offer_id": pl.String,
            "channel": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "p_shown": pl.Float64,
            "policy": pl.String,
            "version": pl.String,
        },
    )
    true_new, true_same, true_log = truths / customers
    return Simulation(frame, logging_decisions, candidate_decisions, true_new, true_same, true_log)
