"""The durable event store: append-only Parquet files, partitioned by event date, with a commit checkpoint.

Layout under ``root``::

    _checkpoint.json                      the commit point: last stream id stored, event and batch counts
    date=2026-12-05/b<last>-<first>.parquet   one file per (sync batch, event date)

A batch becomes part of the store when the checkpoint naming its last stream id is written (atomically: temp
file, fsync, rename). Its Parquet files are written (and fsynced) *before* that; files of a batch whose last id
is beyond the checkpoint belong to a sync that died before committing, and :meth:`EventStore.recover` deletes
them — those events are still in Redis (unacknowledged, untrimmed) and the next sync writes them again. So the
store holds every synced event exactly once, whatever moment a sync is killed at.

Files are written through polars; the layout (immutable files, a single small commit object) is what an
object store needs too, but only local paths are supported today.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from recsys.clock import utcnow
from recsys.exceptions import ConfigError, DataError

CHECKPOINT = "_checkpoint.json"
LOCK = ".sync.lock"
ZERO_ID = "0-0"

# Columns of a stored event. ``stream_id`` is the Redis stream id (unique); ``received_at`` comes from it (the
# moment Redis appended the event); ``extra`` holds any field this schema does not know, as JSON (never dropped).
EVENT_SCHEMA: dict[str, Any] = {
    "stream_id": pl.String,
    "received_at": pl.Datetime("us", "UTC"),
    "type": pl.String,
    "customer_id": pl.String,
    "item_id": pl.String,
    "offer_id": pl.String,
    "order_id": pl.String,
    "channel": pl.String,
    "quantity": pl.Float64,
    "price": pl.Float64,
    "timestamp": pl.Datetime("us", "UTC"),
    "arm": pl.String,
    # logged with an offer impression (docs/offers-learning.md): the probability the policy showed the offer,
    # the policy and the snapshot version; files written before these columns existed read them as null
    "p_shown": pl.Float64,
    "policy": pl.String,
    "version": pl.String,
    "extra": pl.String,
}
STRING_FIELDS = ("type", "customer_id", "item_id", "offer_id", "order_id", "channel", "arm", "policy", "version")


def parse_id(stream_id: str) -> tuple[int, int]:
    """Return ``(milliseconds, sequence)`` of a stream id ``"<ms>-<seq>"``; raises ``DataError`` if malformed."""
    ms, _, seq = stream_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        raise DataError(f"not a Redis stream id: {stream_id!r}") from None


def next_id(stream_id: str) -> str:
    """Return the smallest stream id after ``stream_id`` (the ``MINID`` that trims up to and including it)."""
    ms, seq = parse_id(stream_id)
    return f"{ms}-{seq + 1}"


def _sortable(stream_id: str) -> str:
    ms, seq = parse_id(stream_id)
    return f"{ms:015d}.{seq:010d}"


def _unsortable(text: str) -> str:
    ms, _, seq = text.partition(".")
    return f"{int(ms)}-{int(seq)}"


@dataclass(frozen=True)
class Checkpoint:
    """What the store holds: every stream id up to ``last_id``; ``events`` rows in ``batches`` batches."""

    last_id: str = ZERO_ID
    events: int = 0
    batches: int = 0
    updated_at: str | None = None

    def key(self) -> tuple[int, int]:
        """The id as a comparable tuple."""
        return parse_id(self.last_id)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _durable_rename(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    _fsync_dir(final.parent)


class EventStore:
    """An append-only event store in ``root`` (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        text = str(root)
        if "://" in text and not text.startswith("file://"):
            raise ConfigError(
                f"event store {text}: only local paths are supported today; give a directory (e.g. .centric/events)"
            )
        self.root = Path(text.removeprefix("file://"))

    # --- reading -------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """Return the committed checkpoint (the empty one when nothing was stored yet)."""
        path = self.root / CHECKPOINT
        if not path.exists():
            return Checkpoint()
        try:
            data = json.loads(path.read_text())
            return Checkpoint(**data)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{path}: unreadable event-store checkpoint ({exc}); restore it from a backup") from None

    def files(self) -> list[Path]:
        """Return the committed Parquet files, oldest batch first (files of an uncommitted batch are left out)."""
        limit = _sortable(self.checkpoint().last_id)
        found = [p for p in self.root.glob("date=*/b*.parquet") if _batch_of(p) <= limit]
        return sorted(found, key=lambda p: (_batch_of(p), p.parent.name))

    def partitions(self) -> dict[str, list[Path]]:
        """Return committed files grouped by partition (``date=YYYY-MM-DD``)."""
        out: dict[str, list[Path]] = {}
        for path in self.files():
            out.setdefault(path.parent.name, []).append(path)
        return out

    def scan(self) -> pl.LazyFrame:
        """Return every committed event as a lazy frame of ``EVENT_SCHEMA`` (empty when nothing is stored)."""
        files = self.files()
        if not files:
            return pl.LazyFrame(schema=EVENT_SCHEMA)
        return pl.scan_parquet(files, missing_columns="insert").select(list(EVENT_SCHEMA))

    # --- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's writer lock (one sync at a time); raises ``ConfigError`` if another sync holds it.

        An OS file lock: a killed sync releases it at once, so a stale lock never blocks.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / LOCK, "a+")  # noqa: SIM115 - held for the whole block, closed in finally
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"{self.root}: another `centric events sync` is writing this event store; "
                    "wait for it or stop it (one writer at a time)"
                ) from None
            yield
        finally:
            handle.close()

    def recover(self) -> int:
        """Delete temp files and files of batches that were never committed; return how many were deleted."""
        if not self.root.exists():
            return 0
        limit = _sortable(self.checkpoint().last_id)
        removed = 0
        for path in list(self.root.glob("date=*/.tmp-*")) + list(self.root.glob(".tmp-*")):
            path.unlink(missing_ok=True)
            removed += 1
        for path in self.root.glob("date=*/b*.parquet"):
            if _batch_of(path) > limit:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def append(self, frame: pl.DataFrame, last_id: str) -> Checkpoint:
        """Store ``frame`` (``EVENT_SCHEMA``, ids after the checkpoint, up to ``last_id``) and commit it.

        Returns the new checkpoint. The files are durable before the checkpoint names them.
        """
        current = self.checkpoint()
        if parse_id(last_id) <= current.key():
            raise DataError(f"{self.root}: batch ending at {last_id} is not after the checkpoint {current.last_id}")
        self.root.mkdir(parents=True, exist_ok=True)
        batch = _sortable(last_id)
        if frame.height:
            first = _sortable(frame.get_column("stream_id").item(0))
            dates = frame.get_column("timestamp").fill_null(frame.get_column("received_at")).dt.date()
            for (day,), part in (
                frame.with_columns(dates.alias("_day")).partition_by("_day", as_dict=True, maintain_order=True).items()
            ):
                folder = self.root / f"date={day}"
                folder.mkdir(exist_ok=True)
                final = folder / f"b{batch}-{first}.parquet"
                tmp = folder / f".tmp-{final.name}"
                part.drop("_day").write_parquet(tmp, compression="zstd", statistics=True)
                _durable_rename(tmp, final)
        committed = Checkpoint(
            last_id=last_id,
            events=current.events + frame.height,
            batches=current.batches + 1,
            updated_at=utcnow().isoformat(),
        )
        tmp = self.root / f".tmp-{CHECKPOINT}"
        tmp.write_text(json.dumps(committed.__dict__))
        _durable_rename(tmp, self.root / CHECKPOINT)
        return committed


def _batch_of(path: Path) -> str:
    return path.name[1:].split("-", 1)[0]


def batch_last_id(path: Path) -> str:
    """Return the stream id that ends the batch ``path`` was written in."""
    return _unsortable(_batch_of(path))
