"""``run_policy_report``: the value a candidate offer policy would have had on the logged impressions (IPS, SNIPS,
DR with bootstrap intervals) against the logging policy's observed value. See ``recsys.nba.policy_value``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from recsys.exceptions import ArtifactError, DataError
from recsys.nba.exploration import parse_config
from recsys.nba.policy_value import evaluate_policy, logged_slots


def read_logged_events(events: Path | None, store_dir: Path) -> pl.DataFrame:
    """Return the logged events: ``events`` (a file, or an event-store folder) or the event store at ``store_dir``.

    Raises ``DataError`` naming the path when there is nothing to read.
    """
    from recsys.events.store import EventStore

    path = Path(events) if events is not None else Path(store_dir)
    if path.is_dir() or events is None:
        store = EventStore(path)
        if not store.checkpoint().events:
            raise DataError(
                f"{path}: the event store holds no events; run `centric events sync` (or pass --events FILE)"
            )
        return store.scan().collect()
    from recsys.nba.event_history import read_events

    return read_events(path)


def run_policy_report(
    events: pl.DataFrame,
    decisions_path: Path,
    *,
    exploration: str | None = None,
    k: int = 1,
    window_days: int = 14,
    n_boot: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Return the report as a dict (``PolicyValue.to_dict`` plus the candidate's description).

    Raises ``ArtifactError`` when the decisions file is missing, ``DataError``/``ConfigError`` for bad input.
    """
    decisions_path = Path(decisions_path)
    if not decisions_path.exists():
        raise ArtifactError(
            f"{decisions_path}: candidate decisions not found; run `centric decide` or pass --decisions"
        )
    try:
        decisions = pl.read_parquet(decisions_path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{decisions_path}: cannot read decisions: {exc}") from None
    missing = {"customer_id", "channel", "offer_id", "rank", "expected_value", "p_accept"} - set(decisions.columns)
    if missing:
        raise DataError(f"{decisions_path}: decisions need columns {sorted(missing)}")
    policies = parse_config(exploration)
    slots = logged_slots(events, window_days)
    value = evaluate_policy(slots, decisions, policies, k=k, n_boot=n_boot, seed=seed)
    labels = {channel: p.label for channel, p in policies.items()}
    return value.to_dict() | {
        "candidate": {"decisions": str(decisions_path), "exploration": labels or "greedy", "k": k},
        "window_days": window_days,
    }
