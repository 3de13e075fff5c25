"""Where the learned hybrid's fit on The Complete Journey spends its time, stage by stage (issue 19's speed target).

    nice -n 10 .venv/bin/python -m benchmarks.bench_ltr_stages [--split validation|test] [--ltr '{...}']

Fits buy-again and the learned hybrid exactly as ``benchmarks.bench_ltr_significance`` does (same cached next-basket
split, same catalog), with a timer around each stage of :meth:`LearnedHybridRecommender._fit` (``basket_lines``,
``item_context``, ``candidate_features`` of each training cutoff and of the served one, ``training_frame`` in
total, the LightGBM fit ``_train``, ``_predict``). Prints the stages' wall and CPU seconds (CPU: the process's, all
threads, so a stage running in parallel threads shows more CPU than wall), the fit's total, the boosting rounds,
NDCG@10 in both conventions and the ratio to buy-again with its paired-bootstrap interval, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import recsys.models.ranker as ranker
from benchmarks.bench_ltr_significance import bootstrap, cached_split, catalog, fit
from benchmarks.machine import machine
from recsys.evaluation.metrics import per_customer_metrics
from recsys.evaluation.runner import prepare, recommend_all
from recsys.models import basket_features

STAGES: dict[str, list[float]] = {}  # stage -> [wall s, CPU s, calls]


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            totals = STAGES.setdefault(name, [0.0, 0.0, 0])
            totals[0] += time.perf_counter() - wall
            totals[1] += time.process_time() - cpu
            totals[2] += 1

    return wrapper


def _instrument() -> None:
    """Wrap the fit's stage functions (in the modules that call them) with timers."""
    basket_features.candidate_features = _timed("candidate_features", basket_features.candidate_features)
    ranker.candidate_features = basket_features.candidate_features
    for name in ("basket_lines", "item_context", "training_frame"):
        setattr(ranker, name, _timed(name, getattr(ranker, name)))
    cls = ranker.LearnedHybridRecommender
    cls._train = _timed("_train (LightGBM)", cls._train)  # type: ignore[method-assign]
    cls._predict = _timed("_predict", cls._predict)  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("test", "validation"), default="validation")
    parser.add_argument("--ltr", default="{}", help="learned-hybrid parameters as JSON")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "centric-bench-cj")
    args = parser.parse_args()
    ltr = json.loads(args.ltr)
    _instrument()
    start_load = os.getloadavg()
    print(f"Machine: {machine()}; load average at start {' '.join(f'{x:.2f}' for x in start_load)}.")
    print(f"Command: `python -m benchmarks.bench_ltr_stages --split {args.split} --ltr '{json.dumps(ltr)}'`\n")
    data = prepare(cached_split(args.split, args.cache), catalog=catalog(args.cache))
    rows = data.customers
    per: dict[str, dict[str, Any]] = {}
    for name in ("buy_again", "hybrid_ltr"):
        STAGES.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        model = fit(name, data, args.cache, ltr)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        top = recommend_all(model, rows, 10)
        per[name] = per_customer_metrics(top, data.truth[rows], 10, basket_sizes=data.basket_sizes[rows])
        per[name]["_fit"] = (wall, cpu)
    print("| stage of the learned hybrid's fit | calls | wall s | CPU s |")
    print("|---|---:|---:|---:|")
    for stage, (wall, cpu, calls) in STAGES.items():
        print(f"| {stage} | {int(calls)} | {wall:.1f} | {cpu:.1f} |")
    wall, cpu = per["hybrid_ltr"]["_fit"]
    print(f"| **whole fit** | 1 | **{wall:.1f}** | **{cpu:.1f}** |")
    print(
        f"\nboosting rounds {model.boosting_rounds_}, training rows {model.training_rows_:,}, {rows.size:,} households"
    )
    for key, label in (("ndcg", "usual"), ("ndcg_basket", "next-basket")):
        ratio, low, high = bootstrap(per["buy_again"][key], per["hybrid_ltr"][key], 2000)
        print(
            f"NDCG@10 ({label}): buy_again {per['buy_again'][key].mean():.4f}, hybrid_ltr "
            f"{per['hybrid_ltr'][key].mean():.4f}, ratio {ratio:.3f}× (95 % {low:.3f}–{high:.3f})"
        )
    print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
