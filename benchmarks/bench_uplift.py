"""Uplift: a semi-synthetic check on The Complete Journey's real households with a planted, segment-dependent effect.

    .venv/bin/python -m benchmarks.bench_uplift               # 50 seeds
    .venv/bin/python -m benchmarks.bench_uplift --seeds 10

Protocol (``recsys.nba.uplift_simulation``): profiles of the 2,469 households from ``build_profiles`` on their
transactions; a planted baseline (loyal, active households buy anyway) and an offer effect by RFM segment (0 for
Champions, up to +0.20 for Can't Lose). Per seed: a random 60 % run an experiment (half treated); both policies then
target 20 % of the other 40 %: the response policy by P(convert | offered) fitted on the treated, the uplift policy by
the two-model learner. Measure: the planted incremental conversions each captures. Target: uplift ≥ 1.3× response.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.machine import print_measures
from recsys.nba.cj_history import complete_journey_profiles
from recsys.nba.uplift_simulation import uplift_check

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "completejourney"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--learner", default="logistic", choices=["logistic", "gbm"])
    args = parser.parse_args()
    start = time.perf_counter()
    profiles = complete_journey_profiles(pl.read_parquet(DATA / "transactions.parquet"))
    runs = [uplift_check(profiles, seed, learner=args.learner) for seed in range(args.seeds)]
    seconds = time.perf_counter() - start

    def mean(name: str) -> float:
        return float(np.mean([getattr(r, name) for r in runs]))

    ratios = np.asarray([r.ratio for r in runs])
    extra = "".join(
        f" --{k} {v}" for k, v in (("seeds", args.seeds), ("learner", args.learner)) if v not in (50, "logistic")
    )
    rows = [
        ("incremental conversions captured: uplift policy (two-model, mean)", f"{mean('uplift_value'):.2f}"),
        ("incremental conversions captured: response policy (mean)", f"{mean('response_value'):.2f}"),
        ("incremental conversions captured: random targeting (mean)", f"{mean('random_value'):.2f}"),
        ("incremental conversions captured: by the true effect (ceiling)", f"{mean('best_value'):.2f}"),
        (
            "uplift / response (target >= 1.3): ratio of means",
            f"**{mean('uplift_value') / mean('response_value'):.2f}×**",
        ),
        ("uplift / response per seed: median / min", f"{np.median(ratios):.2f}× / {ratios.min():.2f}×"),
        ("time (profiles + all seeds)", f"{seconds:.1f} s"),
    ]
    data = (
        f"{profiles.height:,} Complete Journey households; per seed {runs[0].deployment:,} deployment customers, "
        f"budget {runs[0].targeted:,}; {args.seeds} seeds"
    )
    print_measures(f".venv/bin/python -m benchmarks.bench_uplift{extra}", rows, data)


if __name__ == "__main__":
    main()
