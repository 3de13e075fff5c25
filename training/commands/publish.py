"""`centric publish DIR | --rollback | --list`: versioned snapshots in Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from training.console import console, fail, handle_errors, progress
from training.redis_session import open_redis


@handle_errors
def publish(
    artifact_dir: Annotated[
        Path | None, typer.Argument(help="Artifact directory written by train / analyze / decide.")
    ] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Activate the version published before the active one.")
    ] = False,
    list_versions: Annotated[bool, typer.Option("--list", help="List the kept versions.")] = False,
    activate: Annotated[str | None, typer.Option("--activate", help="Activate this kept version id.")] = None,
) -> None:
    """Publish an artifact directory as a new snapshot version (written, verified, then activated atomically).

    Takes whatever files the directory holds. Uses CENTRIC_REDIS_URL, or the embedded Redis under CENTRIC_HOME.
    """
    from recsys.store.redis_store import RedisSnapshotStore
    from training.jobs.publish import run_publish

    chosen = sum([artifact_dir is not None, rollback, list_versions, activate is not None])
    if chosen != 1:
        raise fail("give exactly one of: ARTIFACT_DIR, --rollback, --list, --activate VERSION")
    with open_redis() as (client, keys, settings):
        ttl_s = settings.snapshot_ttl_days * 86_400
        store = RedisSnapshotStore(client, keys)
        if list_versions:
            _print_versions(store)
        elif rollback:
            version = store.rollback(keep=settings.snapshot_keep, ttl_s=ttl_s)
            console.print(f"rolled back: active version is now [bold]{version}[/]")
        elif activate is not None:
            store.activate(activate, keep=settings.snapshot_keep, ttl_s=ttl_s)
            console.print(f"active version is now [bold]{activate}[/]")
        else:
            assert artifact_dir is not None
            with progress() as bar:
                tasks: dict[str, int] = {}

                def on_progress(what: str, done: int, total: int) -> None:
                    if what not in tasks:
                        tasks[what] = bar.add_task(what, total=total)
                    bar.update(tasks[what], completed=done, total=total)

                summary = run_publish(
                    client, keys, artifact_dir, keep=settings.snapshot_keep, ttl_s=ttl_s, progress=on_progress
                )
            _print_summary(summary)


def _print_summary(summary: dict) -> None:
    table = Table(title=f"published version {summary['version']} ({summary['seconds']} s)")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in summary["counts"].items():
        table.add_row(key.replace("_", " "), f"{value:,}")
    table.add_row("files", ", ".join(summary["files"]))
    if summary["removed_versions"]:
        table.add_row("removed old versions", ", ".join(summary["removed_versions"]))
    console.print(table)
    for note in summary["notes"]:
        console.print(f"note: {note}")


def _print_versions(store: object) -> None:
    versions = store.versions()  # type: ignore[attr-defined]
    if not versions:
        console.print("no versions published yet; run `centric publish DIR`")
        return
    table = Table(title="snapshot versions (newest first)")
    for column in ("version", "published", "active", "customers", "items"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            v.version,
            v.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "yes" if v.active else "",
            f"{v.counts.get('customers', 0):,}",
            f"{v.counts.get('items', 0):,}",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``centric publish`` to ``app``."""
    app.command()(publish)
