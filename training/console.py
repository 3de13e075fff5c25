"""Console output for the CLI: one rich console, progress bars, and errors as one-line messages."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from recsys.exceptions import CentricError

console = Console(stderr=False)
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def progress() -> Progress:
    """Return a progress display for long steps (spinner, bar, count, elapsed). Writes to stderr."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


@contextlib.contextmanager
def step(description: str) -> Iterator[None]:
    """Show a spinner with elapsed time while one indivisible step runs."""
    with progress() as bar:
        task = bar.add_task(description, total=1)
        try:
            yield
        except BaseException:
            bar.remove_task(task)  # the error message, not a half-drawn bar, is the last thing on stderr
            raise
        bar.update(task, completed=1)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the ``typer.Exit`` to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator for commands: a ``CentricError`` becomes a one-line message and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CentricError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper
