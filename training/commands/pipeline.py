"""`centric pipeline run|status`: the daily cycle in one command, resumable, with a JSON report of each run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from training.console import console, fail, progress

pipeline_app = typer.Typer(help="The daily cycle: sync events → history → train → … → loyalty.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="centric.toml (default CENTRIC_PIPELINE_CONFIG, else ./centric.toml if present)."
    ),
]


def _config_path(config: Path | None) -> Path | None:
    import os

    if config is not None:
        return config
    env = os.environ.get("CENTRIC_PIPELINE_CONFIG")
    if env:
        return Path(env)
    return Path("centric.toml") if Path("centric.toml").exists() else None


def _stage_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"pipeline run {report['run_id']}: {report['status']} ({report['seconds']:.1f} s)")
    for col in ("stage", "status", "seconds", "peak MiB", "counts"):
        table.add_column(col, justify="right" if col in ("seconds", "peak MiB") else "left")
    for stage in report["stages"]:
        counts = {k: v for k, v in stage["counts"].items() if not isinstance(v, (dict, list))}
        table.add_row(
            stage["name"],
            stage["status"],
            f"{stage['seconds']:.1f}" if stage["seconds"] is not None else "",
            f"{stage['peak_memory_mb']:.0f}" if stage["peak_memory_mb"] is not None else "",
            (stage["message"] + " " if stage["message"] and stage["status"] != "skipped" else "")
            + json.dumps(counts, default=str)[:160],
        )
    return table


@pipeline_app.command("run")
def run(
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option("--force", help="Publish even if the quality guard refuses.")] = False,
    transactions: Annotated[str | None, typer.Option(help="Base transactions file, or 'demo'.")] = None,
    schema: Annotated[str | None, typer.Option(help="standard | online-retail | complete-journey.")] = None,
    catalog: Annotated[str | None, typer.Option(help="Catalog file (optional).")] = None,
    events_dir: Annotated[str | None, typer.Option(help="Event store directory.")] = None,
    offers: Annotated[str | None, typer.Option(help="Offer catalog (TOML).")] = None,
    loyalty: Annotated[str | None, typer.Option(help="Loyalty program (TOML).")] = None,
    work_dir: Annotated[
        str | None, typer.Option(help="State, caches and run reports (default <home>/pipeline).")
    ] = None,
    artifacts: Annotated[str | None, typer.Option(help="Artifact directory (default <work-dir>/artifacts).")] = None,
    primary: Annotated[str | None, typer.Option(help="hybrid_ltr | hybrid.")] = None,
    k: Annotated[int | None, typer.Option(help="Recommendations per customer.")] = None,
    customers: Annotated[int | None, typer.Option(help="Train on a sample of this many customers.")] = None,
    tolerance: Annotated[float | None, typer.Option(help="Quality guard: largest allowed relative drop.")] = None,
    view_weight: Annotated[
        str | None,
        typer.Option(
            metavar="FLOAT", help="What one viewed item counts next to a purchase (collaborative models); 0 = off."
        ),
    ] = None,
    click_weight: Annotated[
        str | None, typer.Option(metavar="FLOAT", help="As --view-weight, for clicks; 0 = off.")
    ] = None,
    backfill_base: Annotated[
        bool | None, typer.Option("--backfill-base/--no-backfill-base", help="Replay the base file into the ledger.")
    ] = None,
    rebase_dates: Annotated[
        bool | None,
        typer.Option(
            "--rebase-dates/--no-rebase-dates", help="Move the base file's dates to end the day before the first run."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
) -> None:
    """Run the daily cycle; skip stages whose inputs are unchanged, resume a crashed run where it stopped.

    Exit codes: 0 done or nothing to do, 1 a stage failed, 2 bad configuration or input, 3 the quality guard
    refused to publish, 4 another run holds the lock, 130 interrupted.
    """
    import redis

    from recsys.exceptions import CentricError
    from recsys.settings import Settings
    from recsys.store.embedded import redis_url
    from recsys.store.keys import Keys
    from training.pipeline.config import load_config
    from training.pipeline.runner import run_pipeline
    from training.pipeline.state import EXIT_CONFIG, EXIT_LOCKED, PipelineLocked, new_run_id, run_lock

    overrides = {
        "transactions": transactions,
        "schema": schema,
        "catalog": catalog,
        "events_dir": events_dir,
        "offers": offers,
        "loyalty": loyalty,
        "work_dir": work_dir,
        "artifacts": artifacts,
        "primary": primary,
        "k": k,
        "customers": customers,
        "tolerance": tolerance,
        "view_weight": view_weight,
        "click_weight": click_weight,
        "backfill_base": backfill_base,
        "rebase_dates": rebase_dates,
    }
    try:
        settings = Settings()
        resolved = load_config(_config_path(config), overrides)
        if resolved.work_dir is None and settings.pipeline_dir is not None:  # the dashboard reads the same place
            resolved = dataclasses.replace(resolved, work_dir=str(settings.pipeline_dir))
    except CentricError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    run_id = new_run_id()
    work = resolved.work(settings.home)
    try:
        with (
            run_lock(work, run_id),
            redis_url(settings.redis_url, settings.home, appendfsync=settings.appendfsync) as url,
        ):
            client = redis.Redis.from_url(url)
            try:
                with progress() as bar:
                    task = bar.add_task("pipeline", total=8)

                    def on_stage(name: str, index: int, total: int) -> None:
                        bar.update(task, description=f"pipeline: {name}", completed=index, total=total)

                    report = run_pipeline(
                        resolved,
                        client,
                        Keys(settings.env),
                        settings.home,
                        force=force,
                        on_stage=on_stage,
                        run_id=run_id,
                    )
            finally:
                client.close()
    except PipelineLocked as exc:
        raise fail(str(exc), EXIT_LOCKED) from None
    data = report.to_dict()
    if as_json:
        console.print_json(json.dumps(data, default=str))
    else:
        console.print(_stage_table(data))
        if report.status == "nothing_to_do":
            console.print("nothing to do: no new events and no input changed since the last run")
        console.print(f"report: {work / 'runs' / (report.run_id + '.json')}")
    if report.error:
        raise fail(f"stage {report.error['stage']}: {report.error['message']}", report.exit_code or 1)
    raise typer.Exit(report.exit_code or 0)


@pipeline_app.command("status")
def status(
    config: ConfigOption = None,
    work_dir: Annotated[str | None, typer.Option(help="Work directory (default from the config).")] = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="How many recent runs to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show the last runs, what each did, the lock, and the active snapshot."""
    import redis

    from recsys.exceptions import CentricError
    from recsys.settings import Settings
    from training.pipeline.config import load_config
    from training.pipeline.state import list_runs, lock_holder, read_json

    try:
        settings = Settings()
        resolved = load_config(_config_path(config), {"work_dir": work_dir})
        if resolved.work_dir is None and settings.pipeline_dir is not None:
            resolved = dataclasses.replace(resolved, work_dir=str(settings.pipeline_dir))
    except CentricError as exc:
        raise fail(str(exc), 2) from None
    work = resolved.work(settings.home)
    reports = list_runs(work, runs)
    published = read_json(work / "published.json", {})
    active = published.get("version")
    if settings.redis_url:
        from recsys.store.keys import Keys

        try:
            client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
            value = client.get(Keys(settings.env).snapshot_pointer())
            active = value.decode() if value else None
            client.close()
        except (redis.RedisError, OSError):
            pass
    holder = lock_holder(work)
    if as_json:
        console.print_json(json.dumps({"runs": reports, "active_snapshot": active, "lock": holder}, default=str))
        return
    table = Table(title=f"pipeline runs in {work}")
    for col in ("run", "status", "exit", "started", "seconds", "ran", "skipped", "error"):
        table.add_column(col)
    for r in reports:
        ran = [s["name"] for s in r["stages"] if s["status"] == "done"]
        skipped = [s["name"] for s in r["stages"] if s["status"] == "skipped"]
        table.add_row(
            r["run_id"],
            r["status"],
            str(r["exit_code"]),
            r["started_at"][:19],
            f"{r['seconds']:.1f}",
            ",".join(ran),
            ",".join(skipped),
            (r["error"] or {}).get("message", "")[:80],
        )
    console.print(table)
    console.print(
        f"active snapshot: {active or 'none'}"
        + (
            f" (published by this pipeline at {published.get('published_at')})"
            if published.get("version") == active
            else ""
        )
    )
    if holder:
        console.print(
            f"running now: {holder.get('run_id')} (pid {holder.get('pid')}, since {holder.get('started_at')})"
        )


def register(app: typer.Typer) -> None:
    """Add ``centric pipeline``."""
    app.add_typer(pipeline_app, name="pipeline")
