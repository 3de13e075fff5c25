"""Issue 16: the embedded Redis is private (password, 0700/0600), and `centric serve` / `centric demo --serve`
stop it cleanly on SIGTERM and SIGINT with any number of workers, printing no secret along the way."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from recsys.store.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as stopped
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_embedded_redis_needs_its_password_and_its_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)  # as an older version left it
    server = EmbeddedRedis(home, appendfsync="no")
    url = server.start()
    try:
        password = server.password_file.read_text().strip()
        assert len(password) >= 32 and password in url
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        anonymous = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        with pytest.raises(redis.AuthenticationError):
            anonymous.config_get("dir")
        anonymous.close()
        client = redis.Redis.from_url(url)
        client.set("probe", "1")
        assert client.ping()
        client.close()
        assert _mode(home) == 0o700 and _mode(server.data_dir) == 0o700
        assert _mode(server.password_file) == 0o600 and _mode(server.data_dir / "redis.conf") == 0o600
        for path in server.data_dir.rglob("*"):
            assert _mode(path) & 0o077 == 0, f"{path} is readable by others ({oct(_mode(path))})"
        assert password not in (server.data_dir / "redis.url").read_text()
        pid = int((server.data_dir / "redis.pid").read_text())
        assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()  # not visible in `ps`
        # a second process (the CLI, a worker) finds the password itself
        reuser = EmbeddedRedis(home)
        assert reuser.start() == url and not reuser.owned
    finally:
        server.stop()


def _serve(home: Path, args: list[str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRIC_")}
    env.update(CENTRIC_HOME=str(home), CENTRIC_ENV="sec", CENTRIC_DASHBOARD_WARMUP="false")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "training.cli", *args, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{args} exited early: {log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"{args} did not answer in time: {log.read_text()}")


def _stop_and_check(process: subprocess.Popen[bytes], home: Path, sig: int) -> int:
    """Send ``sig``; return the exit code once the process and its embedded Redis are both gone."""
    redis_pid = int((home / "redis" / "redis.pid").read_text())
    process.send_signal(sig)
    code = process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(redis_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(redis_pid), f"the embedded redis-server (pid {redis_pid}) outlived `centric serve`"
    assert not (home / "redis" / "redis.pid").exists()
    return code


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_serve_stops_the_embedded_redis_on_a_signal(tmp_path: Path, sig: int, workers: int) -> None:
    home = tmp_path / "home"
    log = tmp_path / "serve.log"
    process, _ = _serve(home, ["serve", "--workers", str(workers)], log)
    try:
        _stop_and_check(process, home, sig)
    finally:
        if process.poll() is None:
            process.kill()
    password = (home / "redis" / "password").read_text().strip()
    assert password not in log.read_text()
    assert "redis://:***@127.0.0.1" in log.read_text()  # it does say which Redis, masked


@pytest.mark.slow
def test_the_logs_of_a_full_demo_run_hold_no_secret(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = tmp_path / "demo.log"
    process, base = _serve(home, ["demo", "--customers", "40", "--out", str(tmp_path / "out"), "--serve"], log)
    try:
        key = log.read_text().split("shown once):", 1)[1].split()[0]
        auth = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/v1/customers/nobody/recommendations", headers=auth).status_code == 200
        assert (
            httpx.get(f"{base}/v1/customers/x/profile", headers={"Authorization": "Bearer ck_a_b"}).status_code == 401
        )
        assert httpx.get(f"{base}/readyz").status_code == 200
        _stop_and_check(process, home, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    password = (home / "redis" / "password").read_text().strip()
    logs = [log, *(home / "redis").glob("*.log")]
    assert len(logs) == 2
    for path in logs:
        text = path.read_text(errors="replace")
        assert password not in text, f"the Redis password appears in {path.name}"
        assert re.search(r"redis://[^@\s]*:(?!\*\*\*@)[^@\s]+@", text) is None, f"an unmasked URL in {path.name}"
