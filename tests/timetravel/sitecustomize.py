"""Run the test suite at another moment: ``make test TODAY=2028-02-29T23:59:30Z``.

``CENTRIC_TEST_NOW`` names the moment (ISO 8601; ``Z`` or an offset; a bare date means midnight UTC). The test
session (``tests/conftest.py``) and every Python process it starts (uvicorn servers, CLI subprocesses: this
directory is put first on their ``PYTHONPATH``, so Python imports this file as ``sitecustomize`` at start-up)
move their clock with `time-machine <https://github.com/adamchainz/time-machine>`_, which patches
``time.time`` and ``datetime.now`` in-process. Each process's clock reads ``CENTRIC_TEST_NOW`` plus the real
time elapsed since the session began (``CENTRIC_TEST_EPOCH``), so all processes agree and time keeps ticking
across midnight, month end or year end. ``time.monotonic`` is not moved, and Redis keeps the real time (no
Centric key expires at an absolute time, so that is safe).
"""

from __future__ import annotations

import datetime as dt
import os
import time


def target_moment(text: str) -> dt.datetime:
    """Parse ``CENTRIC_TEST_NOW``; raise ``ValueError`` naming the value and the expected form."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"CENTRIC_TEST_NOW / TODAY = {text!r} is not an ISO 8601 moment; use e.g. 2028-02-29T23:59:30Z"
        ) from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def travel() -> dt.datetime | None:
    """Move this process's clock as ``CENTRIC_TEST_NOW`` asks; return the moment travelled to (None: no travel)."""
    text = os.environ.get("CENTRIC_TEST_NOW", "")
    if not text:
        return None
    import time_machine

    target = target_moment(text)
    # the real time at which the session stood at the target moment; children inherit it so their clocks agree
    epoch = float(os.environ.setdefault("CENTRIC_TEST_EPOCH", repr(time.time())))
    moment = target + dt.timedelta(seconds=max(0.0, time.time() - epoch))
    time_machine.travel(moment, tick=True).start()
    return moment


travel()
