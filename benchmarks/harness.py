"""Start an app under uvicorn for a benchmark, wait until it answers, stop it (with every worker) afterwards.

Used by ``bench_serving``, ``bench_loyalty`` and ``bench_http_writes``: one copy of the start-and-poll loop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running uvicorn process group: ``base`` is its URL (``http://127.0.0.1:<port>``)."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop uvicorn and its workers (SIGTERM, then SIGKILL after 15 s)."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start(
    app: str,
    env: Mapping[str, str],
    *,
    workers: int = 1,
    uvicorn_args: Sequence[str] = (),
    ready_path: str | None = "/healthz",
    timeout_s: float = 60.0,
) -> Server:
    """Start ``uvicorn --factory app`` on a free loopback port and return once it answers.

    Ready means ``GET ready_path`` returns 200, or (``ready_path=None``, for apps without a health route) that the
    port accepts connections. Raises ``RuntimeError`` (after stopping it) when it is not ready in ``timeout_s``.
    """
    port = free_port()
    # load tests send one key far above the default per-key rate limit: off unless the caller sets it
    env = {"CENTRIC_RATE_LIMIT_PER_S": "0", **env}
    cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--no-access-log", "--log-level", "warning", *uvicorn_args]
    server = Server(subprocess.Popen(cmd, env=dict(env), cwd=ROOT, start_new_session=True), port)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"uvicorn {app} exited with code {server.proc.returncode} before it was ready")
        if _answers(server, ready_path):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"uvicorn {app} was not ready on port {port} after {timeout_s:.0f} s")


def _answers(server: Server, ready_path: str | None) -> bool:
    try:
        if ready_path is None:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return True
        return httpx.get(server.base + ready_path, timeout=1).status_code == 200
    except (OSError, httpx.HTTPError):
        return False


@contextmanager
def serving(
    app: str,
    env: Mapping[str, str],
    *,
    workers: int = 1,
    uvicorn_args: Sequence[str] = (),
    ready_path: str | None = "/healthz",
) -> Iterator[Server]:
    """``start(...)`` for the duration of a ``with`` block; stopped on the way out."""
    server = start(app, env, workers=workers, uvicorn_args=uvicorn_args, ready_path=ready_path)
    try:
        yield server
    finally:
        server.stop()
