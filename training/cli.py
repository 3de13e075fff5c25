"""The ``centric`` command. Each command lives in its own module under ``training/commands``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="centric",
    help="Centric: loyalty and personalization recommendation engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module exposes ``register(app)``; the order is the order of ``centric --help``.
COMMAND_MODULES = (
    "demo",
    "validate",
    "train",
    "score",
    "evaluate",
    "analyze",
    "propensity",
    "decide",
    "publish",
    "serve",
    "keys",
    "loyalty",
    "campaign",
    "report",
    "events",
    "pipeline",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"training.commands.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
