"""How sure is "learned hybrid ≥ 1.10 × buy-again" on The Complete Journey? A paired bootstrap over households.

    .venv/bin/python -m benchmarks.bench_ltr_significance [--resamples 2000]

Next-basket protocol (each household's last basket is test), both models refit on train + validation with the
settings `bench_recommenders.py` tunes (buy-again half-life 90 days; the learned hybrid's defaults). Prints per-model
NDCG@10, the ratio, its paired-bootstrap 95 % interval, and how many households each model serves better.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from recsys.data import load_transactions
from recsys.evaluation.metrics import hit_matrix
from recsys.evaluation.runner import prepare, recommend_all
from recsys.models import make_model
from recsys.splits import next_basket_split

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def per_customer_ndcg(top: np.ndarray, truth: object, k: int = 10) -> np.ndarray:
    """NDCG@k of each row (binary relevance), as ``recsys.evaluation.metrics.ranking_metrics`` averages it."""
    truth = truth.tocsr()
    hits = hit_matrix(top[:, :k], truth).astype(np.float64)
    relevant = np.diff(truth.indptr)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(relevant, k) - 1]
    return (hits @ discounts) / ideal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    tx = load_transactions(DATA / "completejourney" / "transactions.parquet", schema="complete-journey").transactions
    data = prepare(next_basket_split(tx).final)
    rows = data.customers
    truth = data.truth[rows]
    buy_again = make_model("buy_again", half_life_days=90.0).fit(data.train, recent=data.decayed(90.0))
    learned = make_model("hybrid_ltr").fit(data.train, transactions=data.transactions)
    a = per_customer_ndcg(recommend_all(buy_again, rows, 10), truth)
    b = per_customer_ndcg(recommend_all(learned, rows, 10), truth)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, a.size, size=(args.resamples, a.size))
    ratios = b[draws].mean(axis=1) / a[draws].mean(axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    print("| measure | value |\n|---|---|")
    print(f"| households scored | {a.size:,} |")
    print(f"| NDCG@10 buy_again / hybrid_ltr | {a.mean():.4f} / {b.mean():.4f} |")
    print(f"| ratio | **{b.mean() / a.mean():.3f}×** |")
    print(f"| paired bootstrap 95 % interval ({args.resamples:,} resamples) | {low:.3f}× – {high:.3f}× |")
    print(f"| share of resamples below 1.10× | {(ratios < 1.10).mean():.2f} |")
    print(
        f"| households better / worse / same with hybrid_ltr | {(b > a).sum():,} / {(b < a).sum():,} / "
        f"{(b == a).sum():,} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
