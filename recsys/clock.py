"""The one source of "now" for Centric: timezone-aware UTC, settable by tests and backfills.

Library, serving and training code never call ``datetime.now`` themselves; they call :func:`utcnow` (or take a
``now`` argument that defaults to it). Tests move time in one of two ways:

- in-process, with ``time-machine`` (``make test TODAY=2027-12-31T23:59:40Z`` travels the whole session), which
  also moves this function because it reads ``datetime.now``;
- explicitly, with :func:`frozen` for a block of code, or ``--now`` on the CLI commands that take it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator

_source: Callable[[], dt.datetime] | None = None


def utcnow() -> dt.datetime:
    """Return the current moment as a timezone-aware UTC datetime (or the moment a test fixed)."""
    if _source is not None:
        return _source()
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """Return ``moment`` as aware UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


@contextlib.contextmanager
def frozen(moment: dt.datetime) -> Iterator[dt.datetime]:
    """Make :func:`utcnow` return ``moment`` (as aware UTC) inside the block; yield it."""
    global _source
    fixed = as_utc(moment)
    previous, _source = _source, (lambda: fixed)
    try:
        yield fixed
    finally:
        _source = previous
