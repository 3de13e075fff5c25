"""The main job end to end on the demo data: load → validate → train → analyze → decide → publish → loyalty.

Every stage is the same function the stage's own command calls; the demo only chains them
and collects their summaries.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import redis

from recsys.clock import utcnow
from recsys.columns import Columns
from recsys.store.keys import Keys

PROPENSITY_VALID_FROM = dt.datetime(2017, 8, 1, tzinfo=dt.UTC)  # the time split of benchmarks/bench_nba.py


@dataclass
class StageResult:
    """What one stage reported and how long it took."""

    name: str
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoResult:
    """Summaries of every stage, the artifact directory and the API key created for the demo."""

    artifact_dir: Path
    stages: list[StageResult] = field(default_factory=list)
    api_key: str | None = None


def sample_customers(result: Any, customers: int, seed: int = 7) -> Any:
    """Return a copy of ``result`` restricted to ``customers`` randomly chosen customers (for quick runs)."""
    ids = result.transactions.get_column(Columns.customer_id).unique().sort()
    if customers >= ids.len():
        return result
    keep = ids.sample(n=customers, seed=seed)
    keep_expr = pl.col(Columns.customer_id).is_in(keep.implode())
    transactions = result.transactions.filter(keep_expr)
    returns = result.returns.filter(keep_expr)
    # dataclasses.replace keeps the report and catalog as they were: the sample is a view, not new data.
    import dataclasses

    return dataclasses.replace(result, transactions=transactions, returns=returns)


CLV_CHECK_WEEKS = 12


def check_clv(result: Any, artifact_dir: Path, weeks: int = CLV_CHECK_WEEKS) -> dict[str, Any]:
    """Fit the CLV models on all but the last ``weeks`` weeks and compare their predictions with those weeks.

    Writes ``clv_check/summary.json`` (its ``holdout`` is published for the dashboard); returns the holdout figures.
    """
    from training.jobs.analyze import run_analyze

    last = result.transactions.get_column(Columns.timestamp).max()
    summary = run_analyze(
        result, artifact_dir / "clv_check", calibration_end=(last - dt.timedelta(weeks=weeks)).date(), plots=False
    )
    return dict(summary.get("holdout") or {})


# Fast models for the demo's model-quality page (about 20 s on The Complete Journey, 2 cores); `centric evaluate`
# scores every model, the learned hybrid included.
DEMO_EVAL_MODELS = ("popularity", "trending", "buy_again", "item_knn_cosine", "als")


def evaluate_quick(result: Any, artifact_dir: Path) -> dict[str, Any]:
    """Evaluate ``DEMO_EVAL_MODELS`` (temporal protocol, last 30 days) into ``evaluation.json``; return nDCG@10s."""
    import json

    from training.jobs.evaluate import run_evaluate

    results = run_evaluate(
        result.transactions, protocol="temporal", models=list(DEMO_EVAL_MODELS), catalog=result.catalog
    )
    (artifact_dir / "evaluation.json").write_text(json.dumps(results, indent=2, default=str))
    return {f"ndcg@10 {name}": round(stats.get("ndcg@10") or 0.0, 4) for name, stats in results["models"].items()}


def _timed(name: str, func: Callable[[], dict[str, Any] | None], stages: list[StageResult]) -> dict[str, Any]:
    start = time.perf_counter()
    summary = func() or {}
    stages.append(StageResult(name, time.perf_counter() - start, summary))
    return summary


def _fit_propensity(holder: dict[str, Any], artifact_dir: Path) -> dict[str, Any]:
    """Fit the acceptance model on The Complete Journey's campaigns (validated from 2017-08-01, as bench_nba)."""
    from training.jobs.propensity import load_history, run_propensity_fit

    history, purchases = load_history("complete-journey")
    holder["history"], holder["purchases"] = history, purchases
    report = run_propensity_fit(history, purchases, artifact_dir, valid_from=PROPENSITY_VALID_FROM)
    return {k: report[k] for k in ("version", "learner", "auc", "ece", "split")}


def run_demo(
    client: redis.Redis,
    keys: Keys,
    artifact_dir: Path,
    *,
    loyalty_program: Path,
    offers_catalog: Path,
    customers: int | None = None,
    on_stage: Callable[[str, int, int], None] | None = None,
) -> DemoResult:
    """Run every stage on The Complete Journey and publish it to Redis; return the stage summaries.

    Raises whatever the stages raise (``CentricError`` subclasses carry user-facing messages).
    """
    from recsys.data.demo import load_demo
    from serving.auth import create_api_key
    from training.jobs.analyze import run_analyze
    from training.jobs.decide import run_decide
    from training.jobs.loyalty import run_backfill
    from training.jobs.publish import run_publish
    from training.jobs.train import run_train

    notify = on_stage or (lambda _name, _index, _total: None)
    artifact_dir.mkdir(parents=True, exist_ok=True)
    demo = DemoResult(artifact_dir=artifact_dir)
    holder: dict[str, Any] = {}

    def load() -> dict[str, Any]:
        result = load_demo()
        if customers:
            result = sample_customers(result, customers)
        holder["data"] = result
        report = result.report
        return {
            "rows_read": report.rows_read,
            "rows_used": report.rows_used,
            "rows_rejected": report.rows_rejected,
            "customers": result.transactions.get_column(Columns.customer_id).n_unique(),
            "items": result.transactions.get_column(Columns.item_id).n_unique(),
        }

    steps: list[tuple[str, Callable[[], dict[str, Any] | None]]] = [
        ("load + validate", load),
        ("train recommenders", lambda: run_train(holder["data"], artifact_dir)),
        ("analyze customers", lambda: run_analyze(holder["data"], artifact_dir)),
        ("check the CLV model", lambda: check_clv(holder["data"], artifact_dir)),
        ("evaluate models", lambda: evaluate_quick(holder["data"], artifact_dir)),
        ("fit propensity", lambda: _fit_propensity(holder, artifact_dir)),
        (
            "decide offers",
            lambda: run_decide(artifact_dir, offers_catalog, purchases=holder["purchases"], history=holder["history"]),
        ),
        ("publish snapshot", lambda: run_publish(client, keys, artifact_dir)),
        # replayed as if the history ended now, so the app shows live balances, expiry dates and tiers
        (
            "loyalty backfill",
            lambda: run_backfill(client, keys, loyalty_program, holder["data"], end_at=utcnow().replace(microsecond=0)),
        ),
    ]
    for index, (name, func) in enumerate(steps):
        notify(name, index, len(steps))
        _timed(name, func, demo.stages)
    notify("done", len(steps), len(steps))
    demo.api_key = create_api_key(client, keys, "admin", name="demo")
    return demo
