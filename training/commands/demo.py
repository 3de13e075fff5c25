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
from training.console import console, handle_errors, progress


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
) -> None:
    """Run the daily cycle (`centric pipeline run`'s stages) on The Complete Journey: sync events, load and validate
    the history, train, guard, analyze, decide offers, publish to Redis, apply loyalty.

    With --serve, keep Redis up and serve the API until Ctrl-C. Uses CENTRIC_REDIS_URL when set,
    else a private redis-server under .centric/.
    """
    from training.jobs.demo import run_demo

    settings = Settings()
    keys = Keys(settings.env)
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

        os.environ["CENTRIC_REDIS_URL"] = url
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=bind_host,
            port=bind_port,
            log_level=settings.log_level,
            http=PROTOCOL,
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
