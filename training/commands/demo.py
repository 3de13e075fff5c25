"""`centric demo`: the main job end to end on real demo data, then (optionally) the service."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from recsys.settings import Settings
from recsys.store.connection import sync_client
from recsys.store.embedded import redis_url
from recsys.store.keys import Keys
from training.console import console, fail, handle_errors, progress


def _print_result(result: object) -> None:
    table = Table(title="Centric demo: The Complete Journey (84.51°), the daily cycle (`centric pipeline run`)")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("summary")
    for stage in result.stages:  # type: ignore[attr-defined]
        shown = {k: v for k, v in stage.summary.items() if isinstance(v, (int, float, str, bool))}
        table.add_row(stage.name, stage.status, f"{stage.seconds:.1f}", json.dumps(shown, default=str)[:300])
    console.print(table)
    console.print(f"artifacts: {result.artifact_dir}")  # type: ignore[attr-defined]


@handle_errors
def demo(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API on http://HOST:PORT afterwards.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Artifact directory.")] = Path(".centric/demo"),
    customers: Annotated[
        int | None, typer.Option(min=10, help="Use only this many randomly chosen customers (quick runs).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Bind address for --serve (default CENTRIC_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port for --serve (default CENTRIC_PORT or 8000).")] = None,
    next_day: Annotated[
        bool,
        typer.Option(
            "--next-day",
            help="After a demo run: play one day of shoppers through the HTTP API, run the pipeline again and "
            "show what moved.",
        ),
    ] = False,
    service_url: Annotated[
        str | None,
        typer.Option(
            "--url", help="--next-day: the running service's base URL (default: start one on a free loopback port)."
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="--next-day: a write-scope key for --url (default: create one).")
    ] = None,
    shoppers: Annotated[int, typer.Option(min=1, max=500, help="--next-day: customers who shop that day.")] = 20,
) -> None:
    """Run the daily cycle (`centric pipeline run`'s stages) on The Complete Journey: sync events, load and validate
    the history, train, guard, analyze, decide offers, publish to Redis, apply loyalty.

    With --serve, keep Redis up and serve the API until Ctrl-C. Uses CENTRIC_REDIS_URL when set,
    else a private redis-server under .centric/.
    """
    from training.jobs.demo import run_demo

    settings = Settings()
    keys = Keys(settings.env)
    if next_day:
        _next_day(settings, keys, out, customers, service_url, api_key, shoppers)
        return
    with redis_url(settings.redis_url, settings.home, appendfsync=settings.appendfsync) as url:
        client = sync_client(url)
        try:
            with progress() as bar:
                task = bar.add_task("demo", total=None)

                def on_stage(name: str, index: int, total: int) -> None:
                    bar.update(task, description=f"demo: {name}", completed=index, total=total)

                result = run_demo(
                    client,
                    keys,
                    out,
                    loyalty_program=settings.loyalty_program,
                    offers_catalog=settings.offers_catalog,
                    customers=customers,
                    on_stage=on_stage,
                )
        finally:
            client.close()
        _print_result(result)
        console.print(f"API key (admin scope, shown once): [bold]{result.api_key}[/]")
        bind_host = host or settings.host
        bind_port = port or settings.port
        if not serve:
            console.print(
                f"dashboard: run `centric serve`, then open http://{bind_host}:{bind_port}/ui and sign in with this key"
            )
            return
        console.print(f"dashboard: [bold]http://{bind_host}:{bind_port}/ui[/]  (sign in with the API key above)")
        console.print(
            f"serving on http://{bind_host}:{bind_port}  (docs: /docs)  try:\n"
            f"  curl -H 'Authorization: Bearer {result.api_key}' "
            f"http://{bind_host}:{bind_port}/v1/customers/{_example_customer(out)}/recommendations"
        )
        import uvicorn

        from serving.hotpath.http_protocol import PROTOCOL
        from training.commands.serve import exit_cleanly_on_sigterm

        exit_cleanly_on_sigterm()  # the embedded Redis stops on SIGTERM too
        os.environ["CENTRIC_REDIS_URL"] = url
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=bind_host,
            port=bind_port,
            log_level=settings.log_level,
            http=PROTOCOL,
        )


def _next_day(
    settings: Settings,
    keys: Keys,
    out: Path,
    customers: int | None,
    service_url: str | None,
    api_key: str | None,
    shoppers: int,
) -> None:
    """Play a day through the API, rerun the demo's pipeline, print what moved; exit 1 when the loop did not close."""
    import contextlib

    import httpx

    from serving.auth import create_api_key
    from training.jobs.demo import demo_config, run_demo_pipeline
    from training.jobs.demo_day import local_service, observe, play_day
    from training.pipeline.state import list_runs

    if not (out / "recommendations.parquet").exists():
        raise fail(f"{out}: no demo found; run `centric demo --out {out}` first")
    last = next(iter(list_runs(out / "pipeline", 1)), {})
    if customers is None:  # the same sample as the demo run, else the whole history would change
        customers = (last.get("config") or {}).get("customers")
    config = demo_config(
        out, loyalty_program=settings.loyalty_program, offers_catalog=settings.offers_catalog, customers=customers
    )
    with redis_url(settings.redis_url, settings.home, appendfsync=settings.appendfsync) as url:
        client = sync_client(url)
        try:
            key = api_key or create_api_key(client, keys, "write", name="demo-next-day")
            service = contextlib.nullcontext(service_url) if service_url else local_service(url, keys.env)
            with (
                service as base,
                httpx.Client(base_url=str(base), headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
            ):
                console.print(f"the next day ({base}): {shoppers} customers shop, browse and use their offers …")
                day = play_day(http, client, keys, out, shoppers=shoppers)
                console.print(
                    f"posted {day.events} events ({day.purchase_lines} purchase lines in {len(day.shoppers)} orders)"
                    f"; {sum(s.reward_redeemed is not None for s in day.shoppers)} rewards redeemed"
                )
                with progress() as bar:
                    task = bar.add_task("pipeline", total=8)

                    def on_stage(name: str, index: int, total: int) -> None:
                        bar.update(task, description=f"pipeline: {name}", completed=index, total=total)

                    report = run_demo_pipeline(client, keys, config, out, on_stage)
                from training.commands.pipeline import _stage_table

                console.print(_stage_table(report.to_dict()))
                if report.error:
                    raise fail(f"stage {report.error['stage']}: {report.error['message']}", report.exit_code or 1)
                totals = observe(http, client, keys, config.work(out), day)
        finally:
            client.close()
    _print_day(day, totals)
    if totals["orders_in_history"] < totals["orders"] or totals["new_items_still_suggested"]:
        raise fail("the loop did not close: see the table above", 1)


def _print_day(day: object, totals: dict[str, int]) -> None:
    table = Table(title="the next day, after the pipeline ran again")
    for col in ("customer", "bought for the first time", "was", "now", "order in history", "points", "reward"):
        table.add_column(col)
    for s in day.shoppers:  # type: ignore[attr-defined]
        table.add_row(
            s.customer_id,
            f"{s.new_item_name} ({s.new_item})",
            f"personalized #{s.new_item_rank}",
            s.after["new_item_now"],
            "yes" if s.after["in_history"] else "NO",
            f"+{s.after['points_earned']}",
            s.reward_redeemed or "",
        )
    console.print(table)
    n = totals["orders"]
    console.print(f"new purchases in the history: {totals['orders_in_history']} of {n} orders")
    console.print(
        f"recommendations moved: {n - totals['new_items_still_suggested']} of {n} first-time items are no longer "
        "new-item suggestions for their buyer"
    )
    console.print(
        f"loyalty ledger: {totals['earned_in_ledger']} of {n} orders earned points (pipeline loyalty stage); "
        f"{totals['rewards_in_ledger']} of {totals['rewards_redeemed']} reward redemptions on the statement"
    )
    console.print(
        f"offer counters: redemptions +{totals['offer_redemptions']} for {totals['offer_redeem_events']} redeem events"
    )


def _example_customer(out: Path) -> str:
    import polars as pl

    path = out / "recommendations.parquet"
    if not path.exists():
        return "CUSTOMER_ID"
    return str(pl.scan_parquet(path).select("customer_id").head(1).collect().item())


def register(app: typer.Typer) -> None:
    """Add ``centric demo``."""
    app.command(name="demo")(demo)
