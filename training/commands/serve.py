"""`centric serve`: run the API with uvicorn."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from typing import Annotated

import typer

from training.console import console, handle_errors


@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default CENTRIC_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CENTRIC_PORT or 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (default CENTRIC_WORKERS or 1).")
    ] = None,
) -> None:
    """Serve the HTTP API (docs at /docs). Starts the embedded Redis when CENTRIC_REDIS_URL is unset and shares it
    with every worker."""
    import uvicorn

    from recsys.nba.exploration import parse_config
    from recsys.settings import Settings
    from recsys.store.embedded import mask_url, redis_url
    from serving.hotpath.http_protocol import PROTOCOL

    settings = Settings()
    parse_config(settings.exploration)  # a bad CENTRIC_EXPLORATION is said here, not as a worker's traceback
    exit_cleanly_on_sigterm()
    bind_host, bind_port, n_workers = host or settings.host, port or settings.port, workers or settings.workers
    metrics_dir = None
    if n_workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker writes its metrics here; /metrics aggregates them (prometheus-client multiprocess mode).
        metrics_dir = tempfile.mkdtemp(prefix="centric-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        with redis_url(settings.redis_url, settings.home, appendfsync=settings.appendfsync) as url:
            # Workers build their own Settings from the environment: hand them this Redis.
            os.environ["CENTRIC_REDIS_URL"] = url
            console.print(
                f"serving on http://{bind_host}:{bind_port} with {n_workers} worker(s); docs at /docs; "
                f"Redis {mask_url(url)}"
            )
            uvicorn.run(
                "serving.app:create_app",
                factory=True,
                host=bind_host,
                port=bind_port,
                workers=n_workers,
                log_level=settings.log_level,
                access_log=False,
                http=PROTOCOL,
                # uvicorn's own limits: idle keep-alive connections, and 503 above this many connections/tasks;
                # h11's head limit applies when run with --http h11 (our protocol enforces max_header_bytes)
                timeout_keep_alive=settings.keep_alive_timeout_s,
                limit_concurrency=settings.limit_concurrency,
                h11_max_incomplete_event_size=settings.max_header_bytes,
            )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM unwind the stack (``SystemExit``), so that ``redis_url()`` stops the embedded Redis.

    uvicorn re-raises the SIGTERM it handled once the server has shut down; under the default handler that kills
    the process at once, before any ``finally`` runs, and the embedded redis-server was left running.
    """
    signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def register(app: typer.Typer) -> None:
    """Add ``centric serve`` to ``app``."""
    app.command()(serve)
