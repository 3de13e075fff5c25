"""Off-policy evaluation: coverage of the 95 % intervals over seeded simulations with a known truth.

    .venv/bin/python -m benchmarks.bench_ope              # 100 seeds × 2,000 customers
    .venv/bin/python -m benchmarks.bench_ope --seeds 20   # quicker

Each seed (``recsys.nba.ope_simulation``): 2,000 customers × 5 offers with true P(redeem) ~ Beta(2, 12); the
logging snapshot ranks them by a noisy estimate and serves one offer each through the service's exploration code
(epsilon-greedy, ε = 0.3), logging ``p_shown``; redemptions are drawn from the truth. The candidate is a new
decisions table ranked by a better estimate, served greedily (and, in a second scenario, Thompson sampling on the
logging snapshot's own decisions). The estimates come from ``centric report policy``'s code path
(``logged_slots`` → ``evaluate_policy``: IPS, SNIPS, DR, percentile bootstrap, 500 resamples). Target: each
estimator's 95 % interval covers the candidate's true value in about 95 % of runs, never below 85 %.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.machine import print_measures
from recsys.nba.exploration import ExplorationPolicy
from recsys.nba.ope_simulation import simulate
from recsys.nba.policy_value import evaluate_policy, logged_slots

SCENARIOS = {
    "new decisions, greedy": None,
    "same decisions, Thompson (strength 50)": ExplorationPolicy("thompson", strength=50.0),
}


def run(seeds: int, customers: int, n_boot: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name, candidate in SCENARIOS.items():
        covered = {"ips": 0, "snips": 0, "dr": 0}
        errors: dict[str, list[float]] = {k: [] for k in covered}
        widths: dict[str, list[float]] = {k: [] for k in covered}
        gaps = []
        start = time.perf_counter()
        for seed in range(seeds):
            sim = simulate(seed, customers, candidate=candidate)
            decisions = sim.candidate_decisions if candidate is None else sim.logging_decisions
            policies = {} if candidate is None else {"app": candidate}
            value = evaluate_policy(logged_slots(sim.events), decisions, policies, n_boot=n_boot, seed=seed)
            truth = sim.true_value if candidate is None else sim.true_value_same_decisions
            gaps.append(truth - sim.logging_true_value)
            for e in value.estimates:
                covered[e.name] += e.low <= truth <= e.high
                errors[e.name].append(e.value - truth)
                widths[e.name].append(e.high - e.low)
        seconds = time.perf_counter() - start
        rows.append((f"**{name}**: true value − logging's true value (mean)", f"{np.mean(gaps):+.4f}"))
        for kind in covered:
            rows.append(
                (
                    f"{kind.upper()}: coverage of the 95 % interval (target ≈ 95 %, never < 85 %)",
                    f"**{covered[kind]}/{seeds}** (bias {np.mean(errors[kind]):+.4f}, mean width "
                    f"{np.mean(widths[kind]):.4f})",
                )
            )
        rows.append((f"{name}: time for {seeds} runs", f"{seconds:.1f} s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--bootstrap", type=int, default=500)
    args = parser.parse_args()
    rows = run(args.seeds, args.customers, args.bootstrap)
    extra = "" if args.seeds == 100 else f" --seeds {args.seeds}"
    print_measures(
        f".venv/bin/python -m benchmarks.bench_ope{extra}",
        rows,
        f"{args.seeds} seeded simulations × {args.customers:,} customers × 5 offers, one impression each",
    )


if __name__ == "__main__":
    main()
