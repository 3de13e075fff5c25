"""Decide end to end on synthetic profiles: eligibility, caps, budgets, holdout, and the audience direction."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.nba.audience import select_audience
from recsys.nba.decision import DECISION_COLUMNS, build_frame, decide
from recsys.nba.expressions import parse
from recsys.nba.fields import conform
from recsys.nba.offers import catalog_from_dict
from training.jobs.decide import run_decide

ROOT = Path(__file__).resolve().parents[3]


def profiles(n: int = 600, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "lifecycle": rng.choice(["new", "active", "at_risk", "lapsed"], n).tolist(),
            "clv": rng.gamma(2.0, 150.0, n),
            "p_alive": rng.uniform(0, 1, n),
            "churn_risk": rng.uniform(0, 1, n),
            "value_tier": rng.choice(["top_10", "rest"], n, p=[0.1, 0.9]).tolist(),
            "top_categories": [["DAIRY", "MEAT"] if i % 2 else ["BAKERY"] for i in range(n)],
        }
    )


CATALOG = {
    "policy": {"max_offers_per_customer": 2},
    "offer": [
        {
            "id": "winback",
            "kind": "percent_discount",
            "goal": "retain",
            "channels": ["email", "app"],
            "value": 20,
            "cost": 4,
            "max_redemptions": 15,
        },
        {
            "id": "dairy",
            "kind": "amount_discount",
            "eligibility": "affinity > 0 and clv >= 100",
            "target_categories": ["DAIRY"],
            "channels": ["app"],
            "value": 8,
            "cost": 1,
            "max_contacts": 50,
        },
        {"id": "content", "kind": "content", "channels": ["web", "app"], "value": 2},
    ],
    "experiment": [
        {
            "id": "exp",
            "salt": "x",
            "arms": [{"name": "nba", "weight": 0.8}, {"name": "hold", "weight": 0.2, "holdout": True}],
        }
    ],
}


@pytest.fixture(scope="module")
def decided() -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = build_frame(profiles())
    return frame, decide(frame, catalog_from_dict(CATALOG)).decisions


def test_decisions_have_contract_columns_and_ranks_per_customer_channel(decided: tuple) -> None:
    _, d = decided
    assert tuple(d.columns) == DECISION_COLUMNS
    ranks = d.group_by("customer_id", "channel").agg(pl.col("rank").sort())
    assert all(r == list(range(1, len(r) + 1)) for r in ranks.get_column("rank").to_list())


def test_eligibility_caps_budgets_and_holdout_hold(decided: tuple) -> None:
    frame, d = decided
    joined = d.join(frame.select("customer_id", "lifecycle", "churn_risk", "clv", "top_categories"), on="customer_id")
    win = joined.filter(pl.col("offer_id") == "winback")
    assert win.filter(~(pl.col("lifecycle").is_in(["at_risk", "lapsed"]) | (pl.col("churn_risk") >= 0.5))).is_empty()
    dairy = joined.filter(pl.col("offer_id") == "dairy")
    assert dairy.filter(~pl.col("top_categories").list.contains("DAIRY") | (pl.col("clv") < 100)).is_empty()
    per_customer = d.unique(["customer_id", "offer_id"]).group_by("customer_id").len()
    assert per_customer.get_column("len").max() <= 2
    assert d.filter(pl.col("offer_id") == "dairy").get_column("customer_id").n_unique() <= 50
    assert d.filter(pl.col("offer_id") == "winback").unique("customer_id").get_column("p_accept").sum() <= 15 + 1e-6
    assert set(d.get_column("arm").unique()) == {"nba"}  # the holdout arm gets nothing


def test_audience_is_consistent_with_per_customer_decisions(decided: tuple) -> None:
    _, d = decided
    audience = select_audience(d, "winback", budget=5.0)
    assert 0 < audience.expected_redemptions <= 5.0
    assigned = d.filter(pl.col("offer_id") == "winback").unique("customer_id")
    merged = audience.customers.join(assigned, on="customer_id", how="left")
    assert merged.get_column("offer_id").null_count() == 0  # everyone in the audience has the offer
    assert np.allclose(merged.get_column("expected_value"), merged.get_column("expected_value_right"))
    assert np.allclose(merged.get_column("p_accept"), merged.get_column("p_accept_right"))
    # the audience is the best prefix: nobody left out has a higher expected value than someone chosen
    left_out = assigned.join(audience.customers, on="customer_id", how="anti")
    if not left_out.is_empty():
        assert left_out.get_column("expected_value").max() <= audience.customers.get_column("expected_value").min()
    everyone = select_audience(d, "winback", budget=1e6)
    assert everyone.customers.height == assigned.height


def test_run_decide_writes_the_three_artifacts(tmp_path: Path) -> None:
    profiles().write_parquet(tmp_path / "profiles.parquet")
    summary = run_decide(tmp_path, ROOT / "examples" / "offers.toml")
    d = pl.read_parquet(tmp_path / "decisions.parquet")
    assert d.height == summary["decisions"] > 0
    offers = json.loads((tmp_path / "offers.json").read_text())
    assert {o["id"] for o in offers} >= set(d.get_column("offer_id").unique())
    experiments = json.loads((tmp_path / "experiments.json").read_text())
    assert experiments[0]["salt"] and len(experiments[0]["arms"]) == 2


NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


# --- Review of 2026-11-30: arbitration caps under tied scores, NaN in eligibility -----------------------------------


def test_tied_offers_do_not_exceed_max_offers_per_customer() -> None:
    """Two offers with identical economics tie for every customer; with max_offers_per_customer = 1 each customer
    must still get at most one offer (``_selected`` keeps every offer whose reduced score equals the k-th one)."""
    catalog = catalog_from_dict(
        {
            "policy": {"max_offers_per_customer": 1},
            "offer": [
                {"id": "a", "kind": "content", "channels": ["app"], "value": 4},
                {"id": "b", "kind": "content", "channels": ["app"], "value": 4},
                {"id": "c", "kind": "content", "channels": ["app"], "value": 1},
            ],
        }
    )
    frame = build_frame(pl.DataFrame({"customer_id": [f"c{i}" for i in range(5)], "p_alive": [0.7] * 5}))
    decisions = decide(frame, catalog, now=NOW).decisions
    per_customer = decisions.group_by("customer_id").agg(pl.col("offer_id").n_unique().alias("n"))
    assert per_customer.get_column("n").max() <= 1, decisions.sort("customer_id").to_dicts()


def test_nan_clv_is_unknown_not_above_every_threshold() -> None:
    """A NaN CLV must not satisfy ``clv >= 500``: polars orders NaN above every number, so the compiled rule
    says True while the per-customer interpreter says False, and decide hands the VIP offer to that customer."""
    frame = build_frame(
        pl.DataFrame(
            {
                "customer_id": ["nan_clv", "low_clv"],
                "clv": [float("nan"), 10.0],
                "p_alive": [0.8, 0.8],
            }
        )
    )
    rule = parse("clv >= 500")
    assert rule.mask(frame).to_list() == [rule.evaluate(r) for r in conform(frame).to_dicts()]
    catalog = catalog_from_dict(
        {
            "offer": [
                {"id": "vip", "kind": "content", "eligibility": "clv >= 500", "channels": ["app"], "value": 4},
            ]
        }
    )
    decisions = decide(frame, catalog, now=NOW).decisions
    assert decisions.filter(pl.col("customer_id") == "nan_clv").is_empty()
