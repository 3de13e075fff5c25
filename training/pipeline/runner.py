"""``run_pipeline``: the daily cycle, stage by stage, skipping what is done and resuming what is not.

Each stage computes the fingerprint of its inputs (files, options, the fingerprints of the stages it reads
from). When ``state.json`` records the same fingerprint for it, it is skipped. A stage records its fingerprint
only once it has finished, so a run killed in the middle of a stage reruns that stage and nothing before it.
Every stage calls the same job function as its own command (``centric train`` …).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from recsys.clock import utcnow
from recsys.columns import Columns
from recsys.events.history import file_fingerprint, load_history
from recsys.exceptions import CentricError, ConfigError, DataError
from recsys.implicit_feedback import stage_counts
from recsys.store.keys import Keys
from training.pipeline.config import PipelineConfig
from training.pipeline.context import (
    Context,
    Extras,
    load_saved_history,
    load_saved_implicit,
    sample_history,
    save_history,
)
from training.pipeline.state import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    STAGES,
    PeakMemory,
    RunReport,
    StageReport,
    fingerprint,
    new_run_id,
    read_json,
    write_json,
)

Notify = Callable[[str, int, int], None]


class QualityRefused(CentricError):
    """The quality guard refused to publish: the new model's validation figures fell too far."""


# --- stages: each returns its counts; ``inputs`` gives what its fingerprint covers -----------------------------
def _sync(ctx: Context) -> dict[str, Any]:
    from recsys.events.sync import sync_events

    result = sync_events(ctx.client, ctx.keys, ctx.store)
    return {
        "events": result.events,
        "stored_events": result.checkpoint.events,
        "events_per_second": result.to_dict()["events_per_second"],
    }


def _history(ctx: Context) -> dict[str, Any]:
    catalog = ctx.config.path("catalog")
    history = load_history(
        ctx.base_path(),
        ctx.store,
        ctx.work / "history",
        schema=ctx.schema(),
        catalog=catalog,
        rejects_path=ctx.work / "history" / "event_rejects.csv",
        shift=ctx.shift(),
        implicit=ctx.config.feedback_weights().enabled,  # views and clicks are not even read while they are off
    )
    if ctx.config.customers:
        history = sample_history(history, ctx.config.customers)
    save_history(ctx, history)
    report = history.result.report
    implicit = ctx.config.feedback_weights().enabled
    return {
        "customers": history.result.transactions.get_column(Columns.customer_id).n_unique(),
        "items": history.result.transactions.get_column(Columns.item_id).n_unique(),
        "rows_read": report.rows_read,
        "rows_used": report.rows_used,
        "rows_rejected": report.rows_rejected,
        "returns": report.returns,
        **{k: v for k, v in history.summary.to_dict().items() if k != "implicit_rows" or implicit},
    }


def _train(ctx: Context) -> dict[str, Any]:
    from training.jobs.train import run_train

    result = load_saved_history(ctx)
    weights = ctx.config.feedback_weights()
    summary = run_train(
        result,
        ctx.artifacts,
        k=ctx.config.k,
        primary=ctx.config.primary,
        feedback_rows=load_saved_implicit(ctx) if weights.enabled else None,
        feedback_weights=weights,
    )
    write_json(summary, ctx.work / "train_summary.json")
    figure = (summary.get("blend_tuning") or {}).get("validation_ndcg@10")
    return {
        **{k: v for k, v in summary["counts"].items()},
        "validation_ndcg@10": figure,
        **stage_counts(summary["implicit_feedback"]),
    }


def _guard(ctx: Context) -> dict[str, Any]:
    summary = read_json(ctx.work / "train_summary.json", {})
    new = (summary.get("blend_tuning") or {}).get("validation_ndcg@10")
    published = read_json(ctx.work / "published.json", {})
    active = ctx.active_version()
    old = published.get("validation_ndcg@10") if published.get("version") == active else None
    counts: dict[str, Any] = {"new_ndcg@10": new, "active_ndcg@10": old, "tolerance": ctx.config.tolerance}
    if new is None or old is None:
        counts["decision"] = "publish (no figures to compare)"
        return counts
    floor = old * (1 - ctx.config.tolerance)
    if new < floor:
        message = (
            f"validation NDCG@10 fell from {old:.4f} (active snapshot {active}) to {new:.4f}, more than the "
            f"{ctx.config.tolerance:.0%} tolerance (floor {floor:.4f}); not publishing — check the new data, "
            "or rerun with --force to publish anyway"
        )
        if not ctx.force:
            raise QualityRefused(message)
        counts["decision"] = "publish (forced past the guard)"
        return counts
    counts["decision"] = "publish"
    return counts


def _analyze(ctx: Context) -> dict[str, Any]:
    from training.jobs.analyze import run_analyze

    summary = run_analyze(load_saved_history(ctx), ctx.artifacts, plots=False)
    counts = {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
    if ctx.extras and ctx.extras.after_analyze:
        counts.update(ctx.extras.after_analyze(ctx))
    return counts


def _decide(ctx: Context) -> dict[str, Any]:
    from training.jobs.decide import run_decide

    counts: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if ctx.extras and ctx.extras.decide_inputs:
        counts, kwargs = ctx.extras.decide_inputs(ctx)
    summary = run_decide(ctx.artifacts, Path(ctx.config.offers), **kwargs)
    return {**counts, **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))}}


def _publish(ctx: Context) -> dict[str, Any]:
    from training.jobs.publish import run_publish

    summary = run_publish(ctx.client, ctx.keys, ctx.artifacts)
    train = read_json(ctx.work / "train_summary.json", {})
    write_json(
        {
            "version": summary["version"],
            "published_at": utcnow().isoformat(),
            "validation_ndcg@10": (train.get("blend_tuning") or {}).get("validation_ndcg@10"),
        },
        ctx.work / "published.json",
    )
    return {"version": summary["version"], **{k: v for k, v in summary.get("counts", {}).items()}}


def _loyalty(ctx: Context) -> dict[str, Any]:
    from training.jobs.loyalty import expire, run_backfill

    program = Path(ctx.config.loyalty)
    counts: dict[str, Any] = {}
    base_fp = ctx.fps["base"]
    if ctx.config.backfill_base and ctx.state.get("loyalty_base") != base_fp:
        # the base file's orders, once per base file (idempotent anyway: each order earns under its own key)
        full = load_saved_history(ctx)
        events = load_saved_history(ctx, events_only=True)
        base = dataclasses.replace(
            full,
            transactions=full.transactions.slice(0, full.transactions.height - events.transactions.height),
            returns=full.returns.slice(0, full.returns.height - events.returns.height),
        )
        summary = run_backfill(ctx.client, ctx.keys, program, base)
        counts["base_orders"] = summary["orders"]
        ctx.state["loyalty_base"] = base_fp
    events = load_saved_history(ctx, events_only=True)
    summary = run_backfill(ctx.client, ctx.keys, program, events)
    counts.update(
        event_orders=summary["orders"], event_returns_applied=summary["returns_applied"], errors=summary["errors"]
    )
    expired = expire(ctx.client, ctx.keys, program, now=utcnow())
    counts.update(points_expired=expired["points_expired"], customers=expired["customers"])
    return counts


def _inputs(ctx: Context, name: str) -> list[Any]:
    c = ctx.config
    fps = ctx.fps
    if name == "history":
        catalog = c.path("catalog")
        fps["base"] = fingerprint(
            file_fingerprint(ctx.base_path()), ctx.schema(), file_fingerprint(catalog) if catalog else None
        )
        shift = ctx.shift()
        # views and clicks enter the fingerprints only when on, so that a work directory from before the switch
        # existed is not retrained for nothing
        implicit = ["implicit"] if c.feedback_weights().enabled else []
        return [fps["base"], fps["sync"], shift.days if shift else 0, c.customers, *implicit]
    if name == "train":
        weights = [c.view_weight, c.click_weight] if c.feedback_weights().enabled else []
        return [fps["history"], c.k, c.primary, c.customers, *weights]
    if name == "guard":
        return [fps["train"], c.tolerance, ctx.force]
    extras = ctx.extras.name if ctx.extras else None
    if name == "analyze":
        return [fps["history"], extras]
    if name == "decide":
        return [fps["analyze"], fps["train"], file_fingerprint(Path(c.offers)), extras]
    if name == "publish":
        return [fps["train"], fps["analyze"], fps["decide"]]
    if name == "loyalty":
        return [fps["history"], file_fingerprint(Path(c.loyalty)), c.backfill_base]
    raise AssertionError(name)  # pragma: no cover


RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "sync": _sync,
    "history": _history,
    "train": _train,
    "guard": _guard,
    "analyze": _analyze,
    "decide": _decide,
    "publish": _publish,
    "loyalty": _loyalty,
}


def _up_to_date(ctx: Context, name: str, fp: str) -> bool:
    recorded = ctx.state.get("stages", {}).get(name, {})
    if recorded.get("fingerprint") != fp:
        return False
    if name == "publish":  # Redis may have lost or moved the pointer since
        return read_json(ctx.work / "published.json", {}).get("version") == ctx.active_version()
    return True


def run_pipeline(
    config: PipelineConfig,
    client: redis.Redis,
    keys: Keys,
    home: Path,
    *,
    force: bool = False,
    on_stage: Notify | None = None,
    run_id: str | None = None,
    extras: Extras | None = None,
) -> RunReport:
    """Run the cycle once (the caller holds the lock); return its report, saved under ``<work>/runs``.

    Never raises for a stage failure: the report's ``status``, ``error`` and ``exit_code`` say what happened.
    """
    work = config.work(home)
    ctx = Context(
        config=config,
        home=home,
        work=work,
        artifacts=config.artifact_dir(home),
        client=client,
        keys=keys,
        force=force,
        state=read_json(work / "state.json", {}),
        extras=extras,
    )
    report = RunReport(
        run_id=run_id or new_run_id(),
        started_at=utcnow().isoformat(),
        work_dir=str(work),
        config={**config.to_dict(), "force": force},
        stages=[StageReport(name) for name in STAGES],
    )
    started = time.perf_counter()
    notify = on_stage or (lambda _n, _i, _t: None)
    _close_dead_runs(work)
    report.snapshot["before"] = ctx.active_version()
    report.save(work)
    ran = 0
    try:
        for index, name in enumerate(STAGES):
            stage = report.stage(name)
            notify(name, index, len(STAGES))
            stage.started_at = utcnow().isoformat()
            fp = None if name == "sync" else fingerprint(name, _inputs(ctx, name))
            if fp is not None and _up_to_date(ctx, name, fp):
                stage.status, stage.fingerprint = "skipped", fp
                stage.message = "inputs unchanged since the last run"
                stage.counts = ctx.state["stages"][name].get("counts", {})
                ctx.fps[name] = fp
                report.save(work)
                continue
            stage.status = "running"
            report.save(work)
            PeakMemory.reset()
            t0 = time.perf_counter()
            try:
                counts = RUNNERS[name](ctx)
            finally:
                stage.seconds = round(time.perf_counter() - t0, 3)
                stage.peak_memory_mb = PeakMemory.peak_mb()
            if name == "sync":
                fp = fingerprint("sync", ctx.store.checkpoint().last_id)
                ran += counts["events"] > 0
            else:
                ran += 1
            stage.status, stage.fingerprint, stage.counts = "done", fp, counts
            ctx.fps[name] = fp
            ctx.state.setdefault("stages", {})[name] = {"fingerprint": fp, "counts": counts, "at": utcnow().isoformat()}
            write_json(ctx.state, work / "state.json")
            report.save(work)
        report.status, report.exit_code = ("succeeded" if ran else "nothing_to_do"), EXIT_OK
    except QualityRefused as exc:
        _fail(report, "refused", str(exc), EXIT_REFUSED)
    except (ConfigError, DataError) as exc:
        _fail(report, "failed", str(exc), EXIT_CONFIG)
    except KeyboardInterrupt:
        _fail(report, "interrupted", "interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # any failure of a stage is reported; the rerun resumes there
        _fail(report, "failed", f"{type(exc).__name__}: {exc}", EXIT_FAILED)
    finally:
        try:
            report.snapshot["after"] = ctx.active_version()
        except (redis.RedisError, OSError):
            report.snapshot["after"] = None
        report.finished_at = utcnow().isoformat()
        report.seconds = round(time.perf_counter() - started, 3)
        stage_peaks = [s.peak_memory_mb for s in report.stages if s.peak_memory_mb is not None]
        report.peak_memory_mb = max([_lifetime_peak(), *stage_peaks])
        for stage in report.stages:
            if stage.status == "pending":
                stage.status = "not_run"
        report.save(work)
        notify("done", len(STAGES), len(STAGES))
    return report


def _close_dead_runs(work: Path, look_back: int = 5) -> None:
    """Mark reports still ``running`` as ``killed``: the caller holds the lock, so their process is gone (a
    ``kill -9`` or a power cut leaves no chance to say so); the stage it was in becomes ``failed``."""
    from training.pipeline.state import list_runs

    for data in list_runs(work, look_back):
        if data.get("status") != "running":
            continue
        stage = next((s for s in data["stages"] if s["status"] == "running"), None)
        if stage is not None:
            stage["status"], stage["message"] = "failed", "the run's process died during this stage"
        data["status"] = "killed"
        data["error"] = {"stage": stage["name"] if stage else "", "message": "the run's process died (killed?)"}
        write_json(data, work / "runs" / f"{data['run_id']}.json")


def _fail(report: RunReport, status: str, message: str, code: int) -> None:
    current = next((s for s in report.stages if s.status == "running"), None)
    if current is not None:
        current.status = "refused" if status == "refused" else "failed"
        current.message = message
    report.status, report.exit_code = status, code
    report.error = {"stage": current.name if current else "", "message": message}


def _lifetime_peak() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
