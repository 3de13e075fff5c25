"""Views and clicks in the daily cycle: ``view_weight`` / ``click_weight`` from file, environment or flag; off, the
history stage does not read them and the fingerprints are those of before the switch; on, train learns from them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from recsys.events.store import EVENT_SCHEMA, EventStore
from recsys.exceptions import ConfigError
from recsys.store.keys import Keys
from training.cli import app
from training.pipeline import runner
from training.pipeline.config import load_config
from training.pipeline.context import Context, load_saved_implicit
from training.pipeline.state import read_json

T0 = dt.datetime(2026, 3, 25, 9, tzinfo=dt.UTC)


def _base(tmp_path: Path) -> Path:
    """25 customers, 3 orders each, in March 2026; j-items rotate so that every customer has items left to find."""
    lines = ["customer_id,item_id,timestamp,quantity,price,order_id"]
    for c in range(25):
        for o in range(3):
            day = 1 + 7 * o + c % 5
            for item in (f"i{c % 4}", f"i{(c + 1) % 4}", f"j{(c + o) % 6}"):
                lines.append(f"c{c},{item},2026-03-{day:02d}T10:00:00Z,1,2.50,c{c}-{o}")
    path = tmp_path / "base.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _store(tmp_path: Path) -> Path:
    """An event store with views of j0 and clicks of j1 by c0..c9, and one view of an item nobody bought."""
    rows = [("view", f"c{c}", "j0") for c in range(10)] + [("click", f"c{c}", "j1") for c in range(10)]
    rows.append(("view", "c1", "not-in-the-shop"))
    full = []
    for n, (kind, customer, item) in enumerate(rows):
        row: dict[str, Any] = dict.fromkeys(EVENT_SCHEMA)
        row.update(stream_id=f"{1000 + n}-0", received_at=T0, timestamp=T0, type=kind, customer_id=customer)
        row["item_id"] = item
        full.append(row)
    frame = pl.DataFrame(full, schema=EVENT_SCHEMA)
    store = EventStore(tmp_path / "events")
    store.append(frame, frame.get_column("stream_id").item(-1))
    return store.root


def _context(tmp_path: Path, **options: Any) -> Context:
    config = load_config(
        None,
        {"transactions": str(_base(tmp_path)), "events_dir": str(_store(tmp_path)), "primary": "hybrid", **options},
        environ={},
    )
    ctx = Context(config, tmp_path, tmp_path / "work", tmp_path / "art", None, Keys("t"), False, {})  # type: ignore[arg-type]
    ctx.fps.update(sync="no-sync-in-this-test")
    return ctx


def test_weights_come_from_the_file_then_the_environment_then_the_flags(tmp_path: Path) -> None:
    toml = tmp_path / "centric.toml"
    toml.write_text("[train]\nview_weight = 0.1\nclick_weight = 0.4\n")
    assert load_config(toml, environ={}).feedback_weights().to_dict() == {"view_weight": 0.1, "click_weight": 0.4}
    env = {"CENTRIC_PIPELINE_VIEW_WEIGHT": "0.2"}
    assert (load_config(toml, environ=env).view_weight, load_config(toml, environ=env).click_weight) == (0.2, 0.4)
    flagged = load_config(toml, {"view_weight": "0.3", "click_weight": None}, env)
    assert (flagged.view_weight, flagged.click_weight) == (0.3, 0.4)
    assert load_config(None, environ={}).feedback_weights().enabled is False  # the default: off


@pytest.mark.parametrize(
    ("where", "pattern"),
    [
        ("file", r"centric.toml \[train\]: view_weight = -0.5 is negative; give view_weight a number from 0 to 1000"),
        ("env", r"environment CENTRIC_PIPELINE_VIEW_WEIGHT: view_weight = 'lots' is not a number"),
        ("flag", r"--view-weight: view_weight = 'nan' is not finite"),
    ],
)
def test_a_bad_weight_is_refused_naming_where_it_came_from(tmp_path: Path, where: str, pattern: str) -> None:
    toml = tmp_path / "centric.toml"
    toml.write_text("[train]\nview_weight = -0.5\n" if where == "file" else "[train]\nk = 5\n")
    env = {"CENTRIC_PIPELINE_VIEW_WEIGHT": "lots"} if where == "env" else {}
    flags = {"view_weight": "nan"} if where == "flag" else {}
    with pytest.raises(ConfigError, match=pattern):
        load_config(toml, flags, env)


def test_with_weights_off_the_history_stage_reads_no_views_and_fingerprints_as_before(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    ctx.fps["history"] = "fp-of-the-history"
    assert len(runner._inputs(ctx, "history")) == 4  # what the stages listed before the switch existed
    assert runner._inputs(ctx, "train") == ["fp-of-the-history", 20, "hybrid", None]
    counts = runner._history(ctx)
    assert "implicit_rows" not in counts
    assert load_saved_implicit(ctx).is_empty()
    (tmp_path / "on").mkdir()
    on = _context(tmp_path / "on", view_weight=0.2)
    on.fps["history"] = "fp-of-the-history"
    assert runner._inputs(on, "history")[-1] == "implicit"  # turning it on reads the history again, with views
    assert runner._inputs(on, "train") == ["fp-of-the-history", 20, "hybrid", None, 0.2, 0.0]


def test_with_a_weight_the_pipeline_trains_on_the_synced_views_and_reports_them(tmp_path: Path) -> None:
    ctx = _context(tmp_path, view_weight=0.5, click_weight=1.0)
    history = runner._history(ctx)
    assert history["implicit_rows"] == 21
    assert load_saved_implicit(ctx).height == 21
    counts = runner._train(ctx)
    assert (counts["view_weight"], counts["click_weight"]) == (0.5, 1.0)
    assert (counts["view_pairs_added"], counts["click_pairs_added"], counts["feedback_dropped_unknown"]) == (10, 10, 1)
    summary = read_json(ctx.work / "train_summary.json", {})
    assert summary["implicit_feedback"]["used"] is True


def test_centric_train_refuses_a_negative_weight_and_reads_views_from_the_event_store(tmp_path: Path) -> None:
    base, events = _base(tmp_path), _store(tmp_path)
    args = ["train", "--transactions", str(base), "--out", str(tmp_path / "art"), "--k", "5", "--models", "als"]
    refused = CliRunner().invoke(app, [*args, "--view-weight", "-1"])
    assert refused.exit_code == 2
    assert "--view-weight: view_weight = '-1' is negative" in refused.output
    done = CliRunner().invoke(app, [*args, "--click-weight", "0.5", "--events-dir", str(events), "--primary", "hybrid"])
    assert done.exit_code == 0, done.output
    assert "views / clicks" in done.output
    manifest = json.loads((tmp_path / "art" / "train_manifest.json").read_text())["implicit_feedback"]
    assert (manifest["view_weight"], manifest["click_weight"], manifest["pairs_added"]) == (
        0.0,
        0.5,
        {"view": 0, "click": 10},
    )


class _NoSnapshot:
    """The Redis of a run whose stages are stand-ins: no active snapshot."""

    def get(self, _key: str) -> None:
        return None


def test_a_rerun_retrains_after_a_weight_changes_and_skips_when_none_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def stand_in(name: str) -> Any:
        def run(_ctx: Context) -> dict[str, Any]:
            ran.append(name)
            return {"events": 0} if name == "sync" else {}

        return run

    for name in runner.RUNNERS:
        monkeypatch.setitem(runner.RUNNERS, name, stand_in(name))
    base, events = _base(tmp_path), _store(tmp_path)

    def run(**weights: Any) -> list[str]:
        ran.clear()
        config = load_config(
            None, {"transactions": str(base), "events_dir": str(events), "work_dir": str(tmp_path / "w"), **weights}, {}
        )
        report = runner.run_pipeline(config, _NoSnapshot(), Keys("t"), tmp_path)  # type: ignore[arg-type]
        assert report.exit_code == 0, report.error
        return [n for n in ran if n in ("history", "train")]

    assert run() == ["history", "train"]
    assert run() == []  # nothing changed
    assert run(view_weight="0.2") == ["history", "train"]  # on: the history reads the views
    assert run(view_weight="0.2") == []
    assert run(view_weight="0.3") == ["train"]  # the same views, another weight
    assert run(view_weight="0.3", click_weight="0.1") == ["train"]
    assert run(view_weight="0.3", click_weight="0.1") == []
    assert run() == ["history", "train"]  # off again: the history drops the views


def test_views_with_padded_ids_stay_with_their_customer_in_a_sampled_history(tmp_path: Path) -> None:
    # the history strips the ids of purchase lines; a view of " c3 " is c3's, also when --customers samples them
    rows = []
    for n in range(25):
        row: dict[str, Any] = dict.fromkeys(EVENT_SCHEMA)
        row.update(stream_id=f"{2000 + n}-0", received_at=T0, timestamp=T0, type="view", customer_id=f" c{n} ")
        row["item_id"] = " j0"
        rows.append(row)
    frame = pl.DataFrame(rows, schema=EVENT_SCHEMA)
    EventStore(tmp_path / "padded").append(frame, frame.get_column("stream_id").item(-1))
    ctx = _context(tmp_path, view_weight=1.0, customers=24)
    ctx.config = dataclasses.replace(ctx.config, events_dir=str(tmp_path / "padded"))
    runner._history(ctx)
    saved = load_saved_implicit(ctx)
    assert saved.height == 24  # one customer of 25 left out of the sample, with their view
    assert set(saved.get_column("item_id")) == {"j0"}
    assert runner._train(ctx)["view_pairs_added"] == 24
