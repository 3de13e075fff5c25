"""Propensity fit through the CLI's code path: quality on The Complete Journey, and fit time at 1M exposures.

    .venv/bin/python -m benchmarks.bench_propensity             # CJ + 1,000,000 synthetic exposures
    .venv/bin/python -m benchmarks.bench_propensity --quick     # CJ + 100,000

Complete Journey: ``fit_propensity`` exactly as ``centric propensity fit --valid-from 2017-08-01`` runs it (the
split of ``bench_nba.py``), reading the tables included. Synthetic: ``recsys.nba.synthetic_history`` (a known
acceptance mechanism, 100 exposures per 10 customers, 12 offers over 120 days), features at day grain as for
logged events, logistic learner; the time covers features, split, the choice of settings on inner folds, fit and
calibration (not generating the data).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import polars as pl

from benchmarks.machine import print_measures
from recsys.nba.cj_history import complete_journey_purchases, read_complete_journey
from recsys.nba.propensity_fit import fit_propensity
from recsys.nba.response_features import purchases_frame
from recsys.nba.synthetic_history import synthetic_history

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "completejourney"
CUT = dt.datetime(2017, 8, 1, tzinfo=dt.UTC)


def complete_journey() -> list[tuple[str, str]]:
    start = time.perf_counter()
    history = read_complete_journey(DATA)
    purchases = purchases_frame(complete_journey_purchases(pl.read_parquet(DATA / "transactions.parquet")))
    report = fit_propensity(history, purchases, valid_from=CUT).report
    seconds = time.perf_counter() - start
    split = report["split"]
    return [
        ("CJ: train / validation exposures", f"{split['train_exposures']:,} / {split['valid_exposures']:,}"),
        (
            "CJ: training labels censored at the cut / dropped (window mostly unseen)",
            f"{split['train_censored_at_cut']:,} / {split['train_dropped_unobserved']:,}",
        ),
        (
            f"CJ: chosen on {len(report['selection']['folds'])} inner fold(s) of the training period",
            f"C={report['c']}, {report['calibration_method']}, fold {report['calibration_fold_rule']} "
            f"{report['calibration_share']}, features {report['feature_set']}",
        ),
        (
            "CJ: calibration fold (time-later)",
            f"{split['calibration_exposures']:,} from {split['calibration_from'][:10]}",
        ),
        ("CJ: validation AUC (target ≥ 0.80)", f"**{report['auc']:.3f}**"),
        (
            f"CJ: validation ECE, {report['ece_binning']} (target ≤ 0.02) / noise floor",
            f"**{report['ece']:.4f}** / {report['ece_noise_floor']:.4f}",
        ),
        ("CJ: fit time, reading the tables included", f"{seconds:.1f} s"),
    ]


def synthetic(exposures: int) -> list[tuple[str, str]]:
    data = synthetic_history(exposures, exposures // 10, days=120, seed=11)
    purchases = purchases_frame(data.transactions)
    start = time.perf_counter()
    report = fit_propensity(data.history, purchases, day_grain=True).report
    seconds = time.perf_counter() - start
    return [
        (
            f"synthetic: {exposures:,} exposures, {exposures // 10:,} customers, {purchases.height:,} purchase lines",
            f"AUC {report['auc']:.3f}, ECE {report['ece']:.4f} (floor {report['ece_noise_floor']:.4f}); chosen on "
            f"{len(report['selection']['folds'])} inner folds: C={report['c']}, {report['calibration_method']}, "
            f"fold {report['calibration_fold_rule']} {report['calibration_share']}, features {report['feature_set']}",
        ),
        (f"synthetic: fit time at {exposures:,} exposures", f"**{seconds:.1f} s**"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 synthetic exposures instead of 1,000,000")
    args = parser.parse_args()
    rows = complete_journey() + synthetic(100_000 if args.quick else 1_000_000)
    flag = " --quick" if args.quick else ""
    print_measures(f".venv/bin/python -m benchmarks.bench_propensity{flag}", rows)


if __name__ == "__main__":
    main()
