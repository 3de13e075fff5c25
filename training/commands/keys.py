"""`centric keys create|list|revoke`: API keys with scopes (stored hashed in Redis)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from training.console import console, handle_errors
from training.redis_session import open_redis

keys_app = typer.Typer(help="Create, list and revoke API keys (scopes: read, write, admin).", no_args_is_help=True)


@keys_app.command("create")
@handle_errors
def create(
    scope: Annotated[
        str, typer.Option("--scope", help="read | write | admin (admin implies write implies read).")
    ] = "read",
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from serving.auth import create_api_key

    with open_redis() as (client, keys, _settings):
        api_key = create_api_key(client, keys, scope, name=name)  # type: ignore[arg-type]
    console.print(f"API key ({scope} scope), shown once — store it now:", highlight=False)
    console.print(api_key, highlight=False, soft_wrap=True)


@keys_app.command("list")
@handle_errors
def list_keys() -> None:
    """List key ids, scopes and names (never the keys)."""
    from serving.auth import list_api_keys

    with open_redis() as (client, keys, _settings):
        rows = list_api_keys(client, keys)  # type: ignore[arg-type]
    table = Table(title="API keys")
    for column in ("id", "scope", "name", "created_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["id"], row["scope"], row["name"], row["created_at"])
    console.print(table)


@keys_app.command("revoke")
@handle_errors
def revoke(key_id: Annotated[str, typer.Argument(help="Key id from `centric keys list`.")]) -> None:
    """Revoke a key (servers stop accepting it within 10 s)."""
    from serving.auth import revoke_api_key

    with open_redis() as (client, keys, _settings):
        found = revoke_api_key(client, keys, key_id)  # type: ignore[arg-type]
    console.print(f"revoked {key_id}" if found else f"no key with id {key_id}")


def register(app: typer.Typer) -> None:
    """Add ``centric keys`` to ``app``."""
    app.add_typer(keys_app, name="keys")
