"""`centric events sync [--follow]` and `centric events status`: the durable event store fed from the stream."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from training.console import console, err_console, handle_errors

events_app = typer.Typer(help="Keep every event: sync the Redis stream into the event store.", no_args_is_help=True)

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Event store directory (default CENTRIC_EVENTS_DIR, else <CENTRIC_HOME>/events)."),
]


@events_app.command("sync")
@handle_errors
def sync(
    store: StoreOption = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep running and sync new events as they come (a service).")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=200_000, help="Events per read and per file.")] = 20_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Drain the events stream into the event store and exit (for a scheduler); --follow keeps consuming.

    Exactly once, whatever moment it is killed at: rerun it. Exit 0 when drained, 2 on an error.
    """
    import redis

    from recsys.events.store import EventStore
    from recsys.events.sync import sync_events
    from recsys.settings import Settings
    from recsys.store.embedded import redis_url
    from recsys.store.keys import Keys

    settings = Settings()
    target = EventStore(store or settings.events_path())
    stopping = {"now": False}

    def _stop(_signum: int, _frame: object) -> None:
        stopping["now"] = True

    if follow:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def on_batch(result: object) -> None:
        data = result.to_dict()  # type: ignore[attr-defined]
        err_console.print(
            f"synced {data['events']:,} events ({data['events_per_second'] or 0:,}/s), last id {data['last_id']}",
            highlight=False,
        )

    with redis_url(settings.redis_url, settings.home, appendfsync=settings.appendfsync) as url:
        client = redis.Redis.from_url(url)
        try:
            result = sync_events(
                client,
                Keys(settings.env),
                target,
                batch=batch,
                follow=follow,
                on_batch=on_batch,
                should_stop=lambda: stopping["now"],
            )
        finally:
            client.close()
    summary = {"store": str(target.root), **result.to_dict()}
    if as_json:
        console.print_json(json.dumps(summary))
        return
    table = Table(title=f"centric events sync → {target.root}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


@events_app.command("status")
@handle_errors
def status(store: StoreOption = None) -> None:
    """Show what the event store holds (events, partitions, last synced id)."""
    from recsys.events.store import EventStore
    from recsys.settings import Settings

    target = EventStore(store or Settings().events_path())
    checkpoint = target.checkpoint()
    partitions = target.partitions()
    table = Table(title=f"event store {target.root}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("events", f"{checkpoint.events:,}")
    table.add_row("last stream id", checkpoint.last_id)
    table.add_row("last sync", checkpoint.updated_at or "never")
    table.add_row("partitions", f"{len(partitions):,}")
    if partitions:
        table.add_row("dates", f"{min(partitions)[5:]} … {max(partitions)[5:]}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``centric events``."""
    app.add_typer(events_app, name="events")
