"""What the pipeline keeps between runs: stage fingerprints (``state.json``), the run lock, and run reports.

The run-report schema is documented in ``docs/pipeline.md`` (the dashboard reads it); change both together.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import resource
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recsys.clock import utcnow

SCHEMA_VERSION = 1
STAGES = ("sync", "history", "train", "guard", "analyze", "decide", "publish", "loyalty")
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_REFUSED, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class PipelineLocked(Exception):
    """Another run holds the lock."""


def fingerprint(*parts: Any) -> str:
    """Return the sha256 of ``parts`` (JSON-encoded, keys sorted)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def write_json(data: Any, path: Path) -> None:
    """Write ``data`` as JSON atomically (temp file + rename): readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # not *.json: a reader globbing runs/*.json never sees it
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def read_json(path: Path, default: Any) -> Any:
    """Return the JSON in ``path``, or ``default`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def new_run_id() -> str:
    """``<UTC start YYYYmmddTHHMMSSZ>-<6 hex>``: sorts by start time."""
    return f"{utcnow().strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


class PeakMemory:
    """Peak resident memory of this process per stage: Linux lets us reset the high-water mark (``clear_refs``)."""

    @staticmethod
    def reset() -> bool:
        """Reset the high-water mark; return False where the OS cannot."""
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    @staticmethod
    def peak_mb() -> float | None:
        """Return the peak resident memory since the last reset (MiB), or the process's lifetime peak."""
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class StageReport:
    """One stage of a run report (see docs/pipeline.md)."""

    name: str
    status: str = "pending"
    started_at: str | None = None
    seconds: float | None = None
    peak_memory_mb: float | None = None
    fingerprint: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


@dataclass
class RunReport:
    """One run (see docs/pipeline.md for the schema)."""

    run_id: str
    started_at: str
    work_dir: str
    config: dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    status: str = "running"
    exit_code: int | None = None
    finished_at: str | None = None
    seconds: float = 0.0
    peak_memory_mb: float | None = None
    snapshot: dict[str, str | None] = field(default_factory=lambda: {"before": None, "after": None})
    stages: list[StageReport] = field(default_factory=list)
    error: dict[str, str] | None = None

    def stage(self, name: str) -> StageReport:
        """The report of stage ``name``."""
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``runs/<run_id>.json`` (fields in schema order)."""
        data = asdict(self)
        order = ["schema_version", "run_id", "status", "exit_code", "started_at", "finished_at", "seconds"]
        return {**{k: data[k] for k in order}, **{k: v for k, v in data.items() if k not in order}}

    def save(self, work: Path) -> Path:
        """Write the report atomically; return its path."""
        path = work / "runs" / f"{self.run_id}.json"
        write_json(self.to_dict(), path)
        return path


def list_runs(work: Path, limit: int = 10) -> list[dict[str, Any]]:
    """Return the newest ``limit`` run reports, newest first."""
    folder = work / "runs"
    if not folder.exists():
        return []
    paths = sorted(folder.glob("*.json"), reverse=True)[:limit]
    return [r for r in (read_json(p, None) for p in paths) if r is not None]


@contextlib.contextmanager
def run_lock(work: Path, run_id: str) -> Iterator[None]:
    """Hold the pipeline lock for the block; raise ``PipelineLocked`` naming the holder.

    An OS file lock: the kernel drops it the moment the holding process dies (``kill -9`` included), so a stale
    lock never blocks; the file only says who held it last.
    """
    work.mkdir(parents=True, exist_ok=True)
    path = work / "pipeline.lock"
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole block, closed in finally
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_json(path, {})
            raise PipelineLocked(
                f"{path}: another pipeline run holds the lock (run {holder.get('run_id', '?')}, "
                f"pid {holder.get('pid', '?')}, since {holder.get('started_at', '?')}); wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"run_id": run_id, "pid": os.getpid(), "started_at": utcnow().isoformat()}))
        handle.flush()
        yield
    finally:
        handle.close()


def lock_holder(work: Path) -> dict[str, Any] | None:
    """Return who holds the lock now (None when free)."""
    path = work / "pipeline.lock"
    if not path.exists():
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_json(path, {"run_id": "?"})
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
