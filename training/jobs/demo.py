"""``centric demo``: the daily cycle (``centric pipeline run``, the same eight stages) on The Complete Journey.

The demo is a pipeline run with a config of its own (``demo_config``: the demo data with its dates moved to end
yesterday, artifacts in the demo folder) and two additions for the dashboard (``DEMO_EXTRAS``): after analyze, the
CLV holdout check and a quick model evaluation; before decide, the acceptance model fitted on the data set's
campaigns. Run it again after events arrived (``centric demo --next-day``) and only what changed reruns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import redis

from recsys.columns import Columns
from recsys.exceptions import CentricError
from recsys.store.keys import Keys
from training.pipeline.config import DEMO, PipelineConfig, load_config
from training.pipeline.context import Context, Extras
from training.pipeline.state import RunReport

PROPENSITY_VALID_FROM = dt.datetime(2017, 8, 1, tzinfo=dt.UTC)  # the time split of benchmarks/bench_nba.py


class DemoFailed(CentricError):
    """A stage of the demo's pipeline failed; the message names it."""


@dataclass
class StageResult:
    """What one stage reported and how long it took."""

    name: str
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    status: str = "done"  # or "skipped" (inputs unchanged since the last run)


@dataclass
class DemoResult:
    """Summaries of every stage, the artifact directory and the API key created for the demo."""

    artifact_dir: Path
    stages: list[StageResult] = field(default_factory=list)
    api_key: str | None = None
    report: RunReport | None = None


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


def _after_analyze(ctx: Context) -> dict[str, Any]:
    """The dashboard's model-quality pages: the CLV holdout check and a quick evaluation (written to artifacts)."""
    history = ctx.history_result()
    holdout = check_clv(history, ctx.artifacts)
    counts: dict[str, Any] = {f"clv_holdout {k}": v for k, v in holdout.items() if isinstance(v, (int, float))}
    return counts | evaluate_quick(history, ctx.artifacts)


def _decide_inputs(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the acceptance model on The Complete Journey's campaigns (once), and give decide its features' inputs:
    the campaigns and the data set's purchases moved by the history's date shift, plus the purchases from events.
    """
    from recsys.nba.propensity_fit import newest_model
    from recsys.nba.response_features import DISCOUNT, purchases_frame
    from recsys.nba.response_history import ResponseHistory
    from training.jobs.propensity import load_history, run_propensity_fit

    history, purchases = load_history("complete-journey")
    counts: dict[str, Any] = {}
    if newest_model(ctx.artifacts) is None:
        report = run_propensity_fit(history, purchases, ctx.artifacts, valid_from=PROPENSITY_VALID_FROM)
        counts = {f"propensity {k}": report[k] for k in ("version", "learner", "auc", "ece")}
    shift = ctx.shift() or dt.timedelta(0)
    events = purchases_frame(ctx.history_result(events_only=True).transactions)
    if DISCOUNT in purchases.columns:
        events = events.with_columns(pl.lit(0.0).alias(DISCOUNT))
    purchases = pl.concat([purchases.with_columns(pl.col("ts") + shift), events.select(purchases.columns)])
    moved = ResponseHistory(
        history.exposures.with_columns(pl.col("start") + shift),
        history.outcomes.with_columns(pl.col("timestamp") + shift),
        history.offer_items,
        history.offer_kinds,
        history.source,
    )
    return counts, {"purchases": purchases, "history": moved}


DEMO_EXTRAS = Extras("demo-1", after_analyze=_after_analyze, decide_inputs=_decide_inputs)


def demo_config(
    artifact_dir: Path,
    *,
    loyalty_program: Path,
    offers_catalog: Path,
    customers: int | None = None,
    events_dir: Path | None = None,
) -> PipelineConfig:
    """The demo's pipeline config: The Complete Journey moved to end yesterday; work files in ``<artifacts>/pipeline``,
    the event store in ``<artifacts>/events`` unless ``events_dir``."""
    return load_config(
        None,
        {
            "transactions": DEMO,
            "rebase_dates": True,
            "work_dir": str(artifact_dir / "pipeline"),
            "artifacts": str(artifact_dir),
            "events_dir": str(events_dir or artifact_dir / "events"),
            "offers": str(offers_catalog),
            "loyalty": str(loyalty_program),
            "customers": customers,
        },
        environ={},
    )


def run_demo_pipeline(
    client: redis.Redis,
    keys: Keys,
    config: PipelineConfig,
    home: Path,
    on_stage: Callable[[str, int, int], None] | None = None,
    force: bool = False,
) -> RunReport:
    """Run the demo's pipeline once under the pipeline lock; return its report (``PipelineLocked`` if held)."""
    from training.pipeline.runner import run_pipeline
    from training.pipeline.state import new_run_id, run_lock

    run_id = new_run_id()
    with run_lock(config.work(home), run_id):
        return run_pipeline(
            config, client, keys, home, force=force, on_stage=on_stage, run_id=run_id, extras=DEMO_EXTRAS
        )


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
    """Run the daily cycle on The Complete Journey (``centric pipeline run``'s stages) and publish it to Redis.

    Returns the stage summaries and an admin API key. Raises ``DemoFailed`` naming the stage that failed (its
    message is the stage's), ``PipelineLocked`` when a demo run holds the folder.
    """
    from serving.auth import create_api_key

    artifact_dir.mkdir(parents=True, exist_ok=True)
    config = demo_config(
        artifact_dir, loyalty_program=loyalty_program, offers_catalog=offers_catalog, customers=customers
    )
    report = run_demo_pipeline(client, keys, config, artifact_dir, on_stage)
    if report.error:
        raise DemoFailed(f"stage {report.error['stage']}: {report.error['message']}")
    demo = DemoResult(artifact_dir=artifact_dir, report=report)
    for stage in report.stages:
        demo.stages.append(StageResult(stage.name, stage.seconds or 0.0, dict(stage.counts), stage.status))
    demo.api_key = create_api_key(client, keys, "admin", name="demo")
    return demo
