"""The dashboard document published with a snapshot: every customer counted once in each view."""

from __future__ import annotations

import polars as pl

from recsys.analytics.dashboard import build_dashboard, nice_edges


def _profiles() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "r_score": [5, 5, 1, 3, 1],
            "f_score": [5, 4, 1, 3, 1],
            "total_spend": [100.0, 50.0, 10.0, 30.0, 5.0],
            "clv": [250.0, 40.0, -1.0, 12.0, 0.0],
            "p_alive": [0.99, 0.9, 0.1, 0.6, 0.2],
            "frequency": [30, 12, 0, 3, 1],
            "recency": [50.0, 40.0, 0.0, 20.0, 2.0],
            "T": [52.0, 52.0, 40.0, 45.0, 52.0],
            "lifecycle": ["active", "active", "lapsed", "at_risk", "lapsed"],
            "segment": ["Champions", "Loyal", "Lost", "Need Attention", "Lost"],
            "last_purchase": pl.Series(["2024-01-01"] * 5).str.to_datetime(),
        }
    )


def test_each_view_counts_every_customer_once() -> None:
    doc = build_dashboard(_profiles())
    assert doc["customers"] == 5 and doc["revenue"] == 195.0
    assert len(doc["rfm"]) == 25 and sum(c["customers"] for c in doc["rfm"]) == 5
    assert sum(c["revenue"] for c in doc["rfm"]) == 195.0
    assert next(c for c in doc["rfm"] if (c["r"], c["f"]) == (1, 1))["customers"] == 2
    assert [s["stage"] for s in doc["lifecycle"]] == ["prospect", "new", "active", "at_risk", "lapsed", "reactivated"]
    assert [s["customers"] for s in doc["lifecycle"]] == [0, 0, 2, 1, 2, 0]
    assert sum(b["customers"] for b in doc["clv_histogram"]) == 5  # a negative CLV counts in the first band
    assert sum(c["customers"] for c in doc["p_alive_map"]["cells"]) == 5
    assert {s["segment"]: s["customers"] for s in doc["segments"]}["Lost"] == 2


def test_partial_profiles_give_empty_parts_instead_of_failing() -> None:
    doc = build_dashboard(pl.DataFrame({"customer_id": ["a"], "lifecycle": ["new"]}))
    assert doc["customers"] == 1 and doc["revenue"] is None and doc["rfm"] == [] and doc["p_alive_map"] is None
    assert sum(s["customers"] for s in doc["lifecycle"]) == 1
    assert build_dashboard(None)["customers"] == 0


def test_evaluation_and_model_parameters_are_carried() -> None:
    results = {"protocol": "temporal", "models": {"als": {"ndcg@10": 0.1}, "buy_again": {"ndcg@10": 0.4}}}
    models = {"bgnbd": {"r": 1.0, "alpha": 2.0, "a": 0.3, "b": 4.0, "loglik": -1.0}, "time_unit": "week"}
    doc = build_dashboard(_profiles(), evaluation=results, models=models, summary={"holdout": {"actual_total": 3}})
    assert [m["model"] for m in doc["evaluation"]["models"]] == ["buy_again", "als"]
    assert doc["bgnbd"] == {"r": 1.0, "alpha": 2.0, "a": 0.3, "b": 4.0} and doc["time_unit"] == "week"
    assert doc["holdout"] == {"actual_total": 3}


def test_histogram_edges_step_1_2_5_past_the_maximum() -> None:
    assert nice_edges(240.0) == [0.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
    assert nice_edges(0.0) == [0.0, 10.0]
