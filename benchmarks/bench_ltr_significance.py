"""How sure is "learned hybrid ≥ 1.15 × buy-again" on The Complete Journey? A paired bootstrap over households.

    .venv/bin/python -m benchmarks.bench_ltr_significance [--split test|validation] [--resamples 2000]
        [--models buy_again,hybrid_ltr,hybrid] [--ltr '{"rounds": 150}'] [--cache DIR] [--json out.json]

Next-basket protocol (``recsys.splits.next_basket_split``): ``--split test`` fits on train + validation and scores
each household's last basket; ``--split validation`` fits on the baskets before the second-to-last one and scores
that basket (every modelling choice is made there; test baskets are never used for one). Buy-again uses the
half-life ``bench_recommenders.py`` tunes (90 days); the learned hybrid its defaults unless ``--ltr`` says
otherwise; the linear hybrid (``hybrid``) its defaults with the blend tuned on the validation split.

Prints, per model, NDCG@10 in both conventions (``ndcg@10``: the ideal DCG cut at min(10, |truth|), over the items a
model could score; ``ndcg_basket@10``: the next-basket convention of the TIFU-KNN and TAIW code, the ideal DCG over
the whole basket, items unseen in training included), recall@10 in the next-basket form (hits ÷ basket size), the
fit seconds, then the ratio of the best served model to buy-again with its paired-bootstrap 95 % interval in both
conventions. The split is cached as Parquet under ``--cache`` (default ``$TMPDIR/centric-bench-cj``) so repeated
runs skip loading and splitting.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.machine import machine
from recsys.evaluation.metrics import per_customer_metrics
from recsys.evaluation.runner import EvalData, prepare, recommend_all
from recsys.models import HybridRecommender, make_model, tune_blend
from recsys.splits import Split, next_basket_split

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def cached_split(which: str, cache: Path) -> Split:
    """The Complete Journey's next-basket ``final`` (``test``) or ``tuning`` (``validation``) split, cached."""
    part = "final" if which == "test" else "tuning"
    files = {name: cache / f"{part}_{name}.parquet" for name in ("train", "test", "sizes")}
    stats_file = cache / f"{part}_stats.json"
    if not all(f.exists() for f in files.values()) or not stats_file.exists():
        from recsys.data import load_transactions

        tx = load_transactions(DATA / "completejourney" / "transactions.parquet", schema="complete-journey")
        plan = next_basket_split(tx.transactions)
        cache.mkdir(parents=True, exist_ok=True)
        if tx.catalog is not None:
            tx.catalog.write_parquet(cache / "catalog.parquet")
        for name, split in (("final", plan.final), ("tuning", plan.tuning)):
            split.train.write_parquet(cache / f"{name}_train.parquet")
            split.test.write_parquet(cache / f"{name}_test.parquet")
            assert split.test_sizes is not None
            split.test_sizes.write_parquet(cache / f"{name}_sizes.parquet")
            (cache / f"{name}_stats.json").write_text(json.dumps(split.stats, default=str))
    return Split(
        name=part,
        train=pl.read_parquet(files["train"]),
        test=pl.read_parquet(files["test"]),
        stats=json.loads(stats_file.read_text()),
        test_sizes=pl.read_parquet(files["sizes"]),
    )


def catalog(cache: Path) -> pl.DataFrame | None:
    """The product catalog cached beside the split (categories for the learned hybrid), if the loader gave one."""
    path = cache / "catalog.parquet"
    return pl.read_parquet(path) if path.exists() else None


def fit(name: str, data: EvalData, cache: Path, ltr: dict[str, Any]) -> Any:
    """Fit one model of the comparison on ``data`` (see the module docstring for the settings)."""
    if name == "buy_again":
        return make_model("buy_again", half_life_days=90.0).fit(data.train, recent=data.decayed(90.0))
    if name == "hybrid_ltr":
        from training.jobs.evaluate import fit_model, model_classes

        return fit_model(model_classes()["hybrid_ltr"], ltr, data)  # with the catalog's categories, as evaluate does
    if name == "hybrid":
        # the blend is tuned on validation (the tuning split's own last basket), never on the scored basket
        tuning = prepare(cached_split("validation", cache), recent_half_life_days=120.0)
        probe = HybridRecommender().fit(tuning.train, recent=tuning.recent)
        best = tune_blend(probe, tuning.customers, tuning.truth)[0]
        data_recent = data.decayed(120.0)
        return HybridRecommender(repeat_weight=best.repeat_weight, repeat_slope=best.repeat_slope).fit(
            data.train, recent=data_recent
        )
    raise ValueError(f"unknown model {name!r}: choose buy_again, hybrid_ltr or hybrid")


def bootstrap(a: np.ndarray, b: np.ndarray, resamples: int) -> tuple[float, float, float]:
    """Return (ratio of means b / a, 2.5 %, 97.5 % of the paired bootstrap over rows)."""
    rng = np.random.default_rng(0)
    draws = rng.integers(0, a.size, size=(resamples, a.size))
    ratios = b[draws].mean(axis=1) / a[draws].mean(axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(b.mean() / a.mean()), float(low), float(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--models", default="buy_again,hybrid_ltr")
    parser.add_argument("--ltr", default="{}", help="learned-hybrid parameters as JSON")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "centric-bench-cj")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-categories", action="store_true", help="fit the learned hybrid without the catalog")
    args = parser.parse_args()
    ltr = json.loads(args.ltr)
    names = [m for m in args.models.split(",") if m]
    load = os.getloadavg()
    print(f"Machine: {machine()}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.")
    flags = " --no-categories" if args.no_categories else ""
    print(f"Command: `python -m benchmarks.bench_ltr_significance --split {args.split} --models {args.models}{flags}`")
    if ltr:
        print(f"Learned-hybrid parameters: `{json.dumps(ltr)}`")
    split = cached_split(args.split, args.cache)
    data = prepare(split, catalog=None if args.no_categories else catalog(args.cache))
    rows = data.customers
    per: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds of the process (all threads): less at the mercy of a shared machine
    for name in names:
        started, cpu_started = time.perf_counter(), time.process_time()
        model = fit(name, data, args.cache, ltr)
        seconds[name] = time.perf_counter() - started
        cpu[name] = time.process_time() - cpu_started
        if hasattr(model, "boosting_rounds_"):
            print(f"{name}: {model.boosting_rounds_} boosting rounds, {model.training_rows_:,} training rows")
        top = recommend_all(model, rows, 10)
        per[name] = per_customer_metrics(top, data.truth[rows], 10, basket_sizes=data.basket_sizes[rows])
    print(f"\n{rows.size:,} households scored on the {args.split} basket.\n")
    print(
        "| model | NDCG@10 (usual: ideal cut at min(k, |truth|)) | NDCG@10 (next-basket: ideal over the basket) "
        "| recall@10 (next-basket: hits ÷ basket) | fit s (wall) | fit CPU s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    summary: dict[str, Any] = {"split": args.split, "households": int(rows.size), "models": {}, "ltr": ltr}
    for name in names:
        m = {key: float(v.mean()) for key, v in per[name].items()}
        summary["models"][name] = {**m, "fit_seconds": seconds[name], "fit_cpu_seconds": cpu[name]}
        print(
            f"| {name} | {m['ndcg']:.4f} | {m['ndcg_basket']:.4f} | {m['recall_basket']:.4f} | {seconds[name]:.1f} "
            f"| {cpu[name]:.1f} |"
        )
    if "buy_again" in per and len(names) > 1:
        best = max((n for n in names if n != "buy_again"), key=lambda n: per[n]["ndcg"].mean())
        print(f"\n| {best} / buy_again | ratio | paired bootstrap 95 % ({args.resamples:,} resamples) |")
        print("|---|---:|---|")
        for key, label in (("ndcg", "NDCG@10 (usual)"), ("ndcg_basket", "NDCG@10 (next-basket)")):
            ratio, low, high = bootstrap(per["buy_again"][key], per[best][key], args.resamples)
            summary[f"ratio_{key}"] = {"model": best, "ratio": ratio, "low": low, "high": high}
            print(f"| {label} | **{ratio:.3f}×** | {low:.3f}× – {high:.3f}× |")
        a, b = per["buy_again"]["ndcg"], per[best]["ndcg"]
        print(
            f"\nhouseholds better / worse / same with {best}: {(b > a).sum():,} / {(b < a).sum():,} / "
            f"{(b == a).sum():,}"
        )
    end = os.getloadavg()
    print(f"load average at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
