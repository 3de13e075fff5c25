"""Next-best-action benchmarks: a back-test on The Complete Journey campaigns, and arbitration at scale.

    .venv/bin/python -m benchmarks.bench_nba            # back-test + 1M customers x 50 offers
    .venv/bin/python -m benchmarks.bench_nba --quick    # back-test + 100k x 50

Back-test protocol (printed with the results): the model is the one ``centric propensity fit`` fits
(``recsys.nba.propensity_fit.fit_propensity``, same features, learner and calibration), so the benchmark and the
CLI cannot drift apart. One row per (household, campaign received); features as of the campaign start from
earlier purchases only; label = the household redeemed a coupon of that campaign within its window. Time split by
campaign start date: campaigns starting before the cut train the model (a time-later fold of them fits the
calibration); campaigns starting on/after the cut are the test set. Value: on the test campaigns, every policy may
make ``BUDGET_SHARE`` × (test households) contacts in total, at most one offer per household, and only pairs the
household actually received are eligible (the only ones with an observed outcome). A redemption is worth 1 (the
data has no coupon face values or margins). Policies: NBA (arbitration on p̂, then the best pairs up to the total),
random (random eligible pairs, same limits), and one offer for everyone (the offer with the best mean predicted
value, to random recipients, same total).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.machine import machine
from recsys.nba.arbitration import Budgets, assign
from recsys.nba.calibration import calibration_table
from recsys.nba.cj_history import complete_journey_purchases, read_complete_journey
from recsys.nba.propensity_fit import data_end_of, design, fit_propensity, response_table
from recsys.nba.response_features import purchases_frame
from recsys.nba.response_history import labels_at
from tests.helpers.scoring import roc_auc

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "completejourney"
CUT = dt.datetime(2017, 8, 1, tzinfo=dt.UTC)
BUDGET_SHARE = 0.25
SEEDS = 50


def _greedy(order: np.ndarray, hh: np.ndarray, camp: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Take pairs in ``order`` while the household is free and the campaign has contacts left."""
    used, taken, chosen = np.zeros_like(budget), set(), []
    for i in order:
        if hh[i] in taken or used[camp[i]] >= budget[camp[i]]:
            continue
        taken.add(hh[i])
        used[camp[i]] += 1
        chosen.append(i)
    return np.asarray(chosen, dtype=np.int64)


def backtest() -> list[tuple[str, str]]:
    start = time.perf_counter()
    history = read_complete_journey(DATA)
    purchases = purchases_frame(complete_journey_purchases(pl.read_parquet(DATA / "transactions.parquet")))
    model = fit_propensity(history, purchases, valid_from=CUT)
    table, _ = response_table(history, purchases)
    train, test = table.filter(pl.col("start") < CUT), table.filter(pl.col("start") >= CUT)
    # as the CLI does: only test exposures whose window closed by the end of the data have a final outcome
    test = labels_at(test, data_end_of(history, purchases)).filter(pl.col("complete"))
    labels = test.get_column("accepted").to_numpy().astype(np.float64)
    p = model.predict_proba(design(test, list(model.features)))
    auc = roc_auc(p, labels)
    cal = calibration_table(p, labels)
    assert abs(auc - model.report["auc"]) < 1e-3, "the benchmark must score what the CLI reports"
    # value back-test on the test campaigns
    hh_ids, hh = np.unique(test.get_column("customer_id").to_numpy(), return_inverse=True)
    camp_ids, camp = np.unique(test.get_column("offer_id").to_numpy(), return_inverse=True)
    value = np.ones(test.height)
    realised = labels * value
    recipients = np.bincount(camp, minlength=len(camp_ids))
    total = int(BUDGET_SHARE * len(hh_ids))
    score = np.full((len(hh_ids), len(camp_ids)), np.nan, dtype=np.float32)
    score[hh, camp] = p * value
    pm = np.zeros_like(score)
    pm[hh, camp] = p
    # every campaign may use the whole budget; the total is applied by keeping the best pairs
    limit = np.full(len(camp_ids), float(total))
    result = assign(
        score,
        pm,
        np.zeros(len(camp_ids)),
        Budgets(limit, np.full(len(camp_ids), np.inf), np.full(len(camp_ids), np.inf)),
        cap=1,
    )
    keep = np.argsort(-score[result.rows, result.cols], kind="stable")[:total]
    pair_index = {(h, c): i for i, (h, c) in enumerate(zip(hh, camp))}
    nba_pairs = np.asarray([pair_index[(h, c)] for h, c in zip(result.rows[keep], result.cols[keep])])
    nba_value, contacts = float(realised[nba_pairs].sum()), len(nba_pairs)
    rng = np.random.default_rng(0)
    budget = np.full(len(camp_ids), float(total))
    random_values = [realised[_greedy(rng.permutation(len(hh)), hh, camp, budget)[:total]].sum() for _ in range(SEEDS)]
    mean_pred = np.bincount(camp, weights=p * value) / recipients
    best = int(np.argmax(mean_pred))
    members = np.flatnonzero(camp == best)
    same_values = [realised[rng.permutation(members)[: min(total, members.size)]].sum() for _ in range(SEEDS)]
    random_value, same_value = float(np.mean(random_values)), float(np.mean(same_values))
    seconds = time.perf_counter() - start
    return [
        (
            "split",
            f"train: {train.height:,} rows / {train.get_column('offer_id').n_unique()} campaigns starting before "
            f"2017-08-01; "
            f"test: {test.height:,} rows / {len(camp_ids)} campaigns on or after",
        ),
        ("redemption rate (train / test)", f"{train.get_column('accepted').mean():.3f} / {labels.mean():.3f}"),
        ("propensity AUC on test (target >= 0.80)", f"**{auc:.3f}**"),
        (
            "calibration on test: Brier / ECE (10 equal-mass bins) / mean p̂ vs rate",
            f"{cal['brier']:.4f} / {cal['ece']:.4f} / {p.mean():.3f} vs {labels.mean():.3f}",
        ),
        ("ECE noise floor (perfectly calibrated p̂, same sample)", f"{model.report['ece_noise_floor']:.4f}"),
        (
            "reliability (mean p̂ → observed, 10 equal-mass bins)",
            ", ".join(f"{b['mean_predicted']:.3f}→{b['observed_rate']:.3f}" for b in cal["bins"]),
        ),
        (
            "budget",
            f"{total:,} contacts ({BUDGET_SHARE:.0%} of {len(hh_ids):,} test households), ≤ 1 offer per household; "
            f"value = redemptions",
        ),
        ("value captured: NBA", f"{nba_value:,.2f} ({contacts:,} contacts, arbitration gap {result.gap:.2%})"),
        ("value captured: random (mean of 50)", f"{random_value:,.2f}"),
        (
            "value captured: one offer for everyone (mean of 50)",
            f"{same_value:,.2f} (campaign {camp_ids[best]}, {min(contacts, members.size):,} contacts)",
        ),
        ("NBA / random (target >= 1.5)", f"**{nba_value / random_value:.2f}×**"),
        ("NBA / one offer for everyone (target >= 1.2)", f"**{nba_value / same_value:.2f}×**"),
        ("back-test time", f"{seconds:.1f} s"),
    ]


def scale(n: int, m: int = 50, cap: int = 3) -> list[tuple[str, str]]:
    rng = np.random.default_rng(1)
    p = rng.beta(1.2, 12.0, (n, m)).astype(np.float32)
    value = rng.uniform(5, 40, m).astype(np.float32)
    cost = rng.uniform(0.5, 5, m)
    score = p * (value - cost.astype(np.float32))
    score[rng.random((n, m), dtype=np.float32) < 0.6] = np.nan  # 40 % of pairs eligible
    contacts = np.where(np.arange(m) % 2 == 0, 0.02 * n, np.inf)
    redemptions = np.where(np.arange(m) % 3 == 0, 0.002 * n, np.inf)
    spend = np.where(np.arange(m) % 5 == 0, 0.004 * n, np.inf)
    start = time.perf_counter()
    result = assign(score, p, cost, Budgets(contacts, redemptions, spend), cap)
    seconds = time.perf_counter() - start
    return [
        (
            "arbitration size",
            f"{n:,} customers × {m} offers, 40 % eligible, cap {cap}/customer, budgets on 38 of 50 offers",
        ),
        ("arbitration time (target <= 60 s for 1M × 50)", f"**{seconds:.1f} s** ({result.rounds} price rounds)"),
        ("assigned pairs / certified gap to LP bound", f"{result.rows.size:,} / {result.gap:.3%}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k customers for the scale test instead of 1M")
    args = parser.parse_args()
    rows = backtest() + scale(100_000 if args.quick else 1_000_000)
    print(
        f"Machine: {machine()}  \n"
        f"Command: `.venv/bin/python -m benchmarks.bench_nba{' --quick' if args.quick else ''}`\n"
    )
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
