"""``rebase_dates``: the base file's dates are moved once, at the first run, and stay put on later runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from recsys.clock import frozen
from recsys.store.keys import Keys
from training.pipeline.config import load_config
from training.pipeline.context import Context


def _context(tmp_path: Path, state: dict[str, Any], rebase: bool = True) -> Context:
    base = tmp_path / "base.csv"
    if not base.exists():
        base.write_text("customer_id,item_id,timestamp,quantity,price\nc1,apple,2017-06-30T10:00:00Z,1,2.0\n")
    config = load_config(None, {"transactions": str(base), "rebase_dates": rebase}, environ={})
    ctx = Context(config, tmp_path, tmp_path / "work", tmp_path / "art", None, Keys("t"), False, state)  # type: ignore[arg-type]
    ctx.fps["base"] = "fp-of-the-base-file"
    return ctx


def test_the_shift_is_fixed_at_the_first_run_so_later_runs_fingerprint_alike(tmp_path: Path) -> None:
    state: dict[str, Any] = {}
    with frozen(dt.datetime(2026, 12, 7, 23, tzinfo=dt.UTC)):
        first = _context(tmp_path, state).shift()
    assert first == dt.date(2026, 12, 6) - dt.date(2017, 6, 30)  # the base now ends yesterday
    with frozen(dt.datetime(2026, 12, 20, 8, tzinfo=dt.UTC)):  # two weeks later: the same shift
        assert _context(tmp_path, state).shift() == first
    state["rebase"]["base"] = "another base file"
    with frozen(dt.datetime(2026, 12, 20, 8, tzinfo=dt.UTC)):  # a new base file is rebased afresh
        assert _context(tmp_path, state).shift() == dt.date(2026, 12, 19) - dt.date(2017, 6, 30)


def test_without_rebase_dates_the_base_keeps_its_dates(tmp_path: Path) -> None:
    assert _context(tmp_path, {}, rebase=False).shift() is None
