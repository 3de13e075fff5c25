"""The loop closes: a propensity fitted on the service's own logged events changes the offer served."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from recsys.clock import frozen
from training.jobs.decide import run_decide
from training.jobs.propensity import load_history, run_propensity_fit

CATALOG = """
[policy]
max_offers_per_customer = 1

[[offer]]
id = "pct"
name = "10% off"
kind = "percent_discount"
goal = "grow"
channels = ["app"]
value = 10.00
cost = 1.00
base_rate = 0.30

[[offer]]
id = "pts"
name = "Double points"
kind = "points_multiplier"
goal = "grow"
channels = ["app"]
value = 10.00
cost = 1.00
base_rate = 0.05
"""
NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def _logged_events(customers: list[str], rng: np.random.Generator) -> pl.DataFrame:
    """Impressions of both offers over 40 days: 'pts' is redeemed about 40 % of the time, 'pct' about 3 %."""
    rows = []
    for c in customers:
        for d in rng.integers(0, 60, 3):
            rows.append(
                {
                    "type": "purchase",
                    "customer_id": c,
                    "item_id": f"i{d % 7}",
                    "price": 5.0,
                    "quantity": 1.0,
                    "timestamp": NOW - dt.timedelta(days=int(d) + 1),
                }
            )
    for k in range(2400):
        c, offer = customers[k % len(customers)], ("pct", "pts")[k % 2]
        shown = NOW - dt.timedelta(days=45) + dt.timedelta(hours=int(k * 40 * 24 / 2400))
        rows.append({"type": "impression", "customer_id": c, "offer_id": offer, "channel": "app", "timestamp": shown})
        if rng.random() < (0.4 if offer == "pts" else 0.03):
            rows.append(
                {
                    "type": "redeem",
                    "customer_id": c,
                    "offer_id": offer,
                    "channel": "app",
                    "timestamp": shown + dt.timedelta(hours=5),
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))


def test_a_model_fitted_on_logged_events_changes_the_top_offer(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    customers = [f"c{i}" for i in range(300)]
    (tmp_path / "offers.toml").write_text(CATALOG)
    pl.DataFrame(
        {"customer_id": customers, "lifecycle": ["active"] * 300, "clv": [100.0] * 300, "p_alive": [0.8] * 300}
    ).write_parquet(tmp_path / "profiles.parquet")
    events = _logged_events(customers, rng)
    events.write_parquet(tmp_path / "events.parquet")

    with frozen(NOW):
        before = run_decide(tmp_path, tmp_path / "offers.toml")
        top_before = pl.read_parquet(tmp_path / "decisions.parquet").get_column("offer_id").value_counts()
        history, purchases = load_history(
            "events", events=tmp_path / "events.parquet", offers_catalog=tmp_path / "offers.toml"
        )
        report = run_propensity_fit(history, purchases, tmp_path)
        after = run_decide(tmp_path, tmp_path / "offers.toml", purchases=purchases, history=history)
    served = pl.read_parquet(tmp_path / "decisions.parquet")

    assert before["propensity"] == "prior"
    assert top_before.filter(pl.col("offer_id") == "pct").get_column("count").item() == 300
    assert after["propensity"].startswith(f"model {report['version']}")
    assert served.filter(pl.col("offer_id") == "pts").height == 300
    assert report["auc"] > 0.7
    published = (tmp_path / "offers.json").read_text()
    assert f"model {report['version']}" in published
