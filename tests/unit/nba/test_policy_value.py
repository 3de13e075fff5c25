"""Off-policy value of a candidate from logged impressions: the closed form by hand, and coverage of the truth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from recsys.exceptions import DataError
from recsys.nba.exploration import ExplorationPolicy
from recsys.nba.ope_simulation import simulate
from recsys.nba.policy_value import candidate_terms, evaluate_policy, logged_slots

T = dt.datetime(2027, 5, 3, 10, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _events() -> pl.DataFrame:
    rows = [
        # customer a: logged o1 with p 0.8 and redeemed it; customer b: logged o2 with p 0.2, redeemed too late
        ("impression", "a", "o1", T, 0.8),
        ("redeem", "a", "o1", T + DAY, None),
        ("impression", "b", "o2", T, 0.2),
        ("redeem", "b", "o2", T + 20 * DAY, None),
        # customer c: an old client that logged no probability (greedy, probability 1) and redeemed
        ("impression", "c", "o1", T, None),
        ("redeem", "c", "o1", T + 2 * DAY, None),
    ]
    return pl.DataFrame(
        rows,
        schema={
            "type": pl.String,
            "customer_id": pl.String,
            "offer_id": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "p_shown": pl.Float64,
        },
        orient="row",
    ).with_columns(pl.lit("app").alias("channel"))


def _decisions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "c"],
            "channel": "app",
            "offer_id": ["o2", "o1", "o2", "o1", "o1"],
            "rank": [1, 2, 1, 2, 1],
            "expected_value": [0.3, 0.5, 0.1, 0.4, 0.6],
            "p_accept": [0.3, 0.5, 0.1, 0.4, 0.6],
        }
    )


def test_slots_label_redemptions_inside_the_window_and_default_a_missing_probability_to_one() -> None:
    slots = logged_slots(_events(), window_days=14)
    assert slots.get_column("reward").to_list() == [1.0, 0.0, 1.0]
    assert slots.get_column("p_shown").to_list() == [0.8, 0.2, 1.0]
    assert slots.get_column("policy").to_list() == ["greedy"] * 3


def test_estimates_equal_the_hand_derived_closed_form() -> None:
    """Candidate: greedy top-1 of ``_decisions``: a→o2, b→o2, c→o1.

    Weights w = π_new(logged)/p_shown: a: 0/0.8 = 0; b: 1/0.2 = 5; c: 1/1 = 1. Rewards 1, 0, 1.
    IPS = (0 + 0 + 1)/3 = 1/3. SNIPS = (0·1 + 5·0 + 1·1)/(0 + 5 + 1) = 1/6.
    DR = mean(q̂_new + w·(r − q̂_logged)): a: 0.3 + 0 = 0.3; b: 0.1 + 5·(0 − 0.1) = −0.4; c: 0.6 + 1·(1 − 0.6) = 1.0;
    DR = (0.3 − 0.4 + 1.0)/3 = 0.3.
    """
    slots = logged_slots(_events())
    p_new, q_logged, q_new = candidate_terms(slots, _decisions())
    np.testing.assert_allclose(p_new, [0.0, 1.0, 1.0])
    np.testing.assert_allclose(q_logged, [0.5, 0.1, 0.6])
    np.testing.assert_allclose(q_new, [0.3, 0.1, 0.6])
    value = evaluate_policy(slots, _decisions(), n_boot=50)
    got = {e.name: e.value for e in value.estimates}
    assert got == pytest.approx({"ips": 1 / 3, "snips": 1 / 6, "dr": 0.3})
    assert value.observed.value == pytest.approx(2 / 3)


def test_an_epsilon_greedy_candidate_weights_by_its_closed_form_probability() -> None:
    slots = logged_slots(_events())
    policy = {"app": ExplorationPolicy("epsilon_greedy", epsilon=0.5)}
    p_new, _, _ = candidate_terms(slots, _decisions(), policy)
    # two candidates for a and b: 0.5·[top] + 0.5·1/2; one candidate for c: 1
    np.testing.assert_allclose(p_new, [0.25, 0.75, 1.0])


def test_the_candidate_equal_to_the_logging_policy_reproduces_the_observed_value() -> None:
    sim = simulate(3, customers=500)
    value = evaluate_policy(
        logged_slots(sim.events), sim.logging_decisions, {"app": ExplorationPolicy("epsilon_greedy", 0.3)}, n_boot=50
    )
    ips = next(e for e in value.estimates if e.name == "ips")
    assert ips.value == pytest.approx(value.observed.value) and value.mean_weight == pytest.approx(1.0)


def test_the_intervals_cover_the_known_value_of_a_different_policy_in_seeded_simulations() -> None:
    covered = {"ips": 0, "snips": 0, "dr": 0}
    seeds = range(8)
    for seed in seeds:
        sim = simulate(seed, customers=1500)
        value = evaluate_policy(logged_slots(sim.events), sim.candidate_decisions, n_boot=200, seed=seed)
        assert abs(sim.true_value - sim.logging_true_value) > 0.02  # the candidate really is a different policy
        for e in value.estimates:
            covered[e.name] += e.low <= sim.true_value <= e.high
    assert all(c >= 6 for c in covered.values()), covered


def test_impressions_are_needed_and_a_bad_probability_is_refused() -> None:
    with pytest.raises(DataError, match="no offer impressions"):
        logged_slots(_events().filter(pl.col("type") == "redeem"))
    with pytest.raises(DataError, match=r"outside \(0, 1\]"):
        logged_slots(_events().with_columns(pl.lit(1.5).alias("p_shown")))


def test_report_policy_command_prints_the_estimates_and_writes_json(tmp_path: Path) -> None:
    from training.cli import app

    sim = simulate(1, customers=300)
    sim.events.write_parquet(tmp_path / "events.parquet")
    sim.candidate_decisions.write_parquet(tmp_path / "decisions.parquet")
    out = CliRunner().invoke(
        app,
        [
            "report", "policy", "--events", str(tmp_path / "events.parquet"), "--decisions",
            str(tmp_path / "decisions.parquet"), "--bootstrap", "50", "--json", str(tmp_path / "r.json"),
        ],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert [e["name"] for e in report["estimates"]] == ["ips", "snips", "dr"]
    assert report["logging_policies"] == {"epsilon_greedy:0.3": 300} and report["slots"] == 300
    assert "policy value per shown offer" in out.output
    missing = CliRunner().invoke(
        app, ["report", "policy", "--events", str(tmp_path / "events.parquet"), "--artifacts", str(tmp_path / "no")]
    )
    assert missing.exit_code == 2 and "candidate decisions not found" in missing.output


def _one_slot_per_customer(customers: int = 60) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(4)
    ids = [f"c{i:03d}" for i in range(customers)]  # sorted: group i is customer i
    slots = pl.DataFrame(
        {
            "customer_id": ids,
            "channel": "app",
            "offer_id": rng.choice(["o1", "o2"], customers).tolist(),
            "p_shown": rng.choice([0.25, 0.75], customers).tolist(),
            "policy": "epsilon_greedy:0.5",
            "reward": (rng.random(customers) < 0.3).astype(float).tolist(),
        }
    )
    decisions = pl.DataFrame(
        {
            "customer_id": np.repeat(ids, 2),
            "channel": "app",
            "offer_id": ["o1", "o2"] * customers,
            "rank": [1, 2] * customers,
            "expected_value": [0.3, 0.2] * customers,
            "p_accept": [0.3, 0.2] * customers,
        }
    )
    return slots, decisions


def test_the_bootstrap_resamples_customers_so_repeated_impressions_do_not_narrow_the_intervals() -> None:
    # ten identical impressions per customer carry no more information than one: resampled by customer, the
    # intervals are exactly those of one impression each; resampled by row they would shrink by about √10
    slots, decisions = _one_slot_per_customer()
    repeated = pl.concat([slots] * 10)
    once = evaluate_policy(slots, decisions, n_boot=200, seed=3)
    ten = evaluate_policy(repeated, decisions, n_boot=200, seed=3)
    for a, b in zip([once.observed, *once.estimates], [ten.observed, *ten.estimates], strict=True):
        assert (b.value, b.low, b.high) == pytest.approx((a.value, a.low, a.high)), a.name


def test_a_candidate_with_no_overlap_with_the_logs_is_refused_not_reported_as_zero() -> None:
    slots = logged_slots(_events())
    elsewhere = _decisions().with_columns(("x" + pl.col("customer_id")).alias("customer_id"))
    with pytest.raises(DataError, match="no overlap"):
        evaluate_policy(slots, elsewhere, n_boot=50)
    never_logged = _decisions().with_columns(pl.lit("o9").alias("offer_id"))
    with pytest.raises(DataError, match="no overlap"):
        evaluate_policy(slots, never_logged, n_boot=50)


def test_an_exploring_impression_without_its_probability_is_refused_not_read_as_one() -> None:
    # a client that echoes the policy but forgets p_shown: counting it as probability 1 would bias every weight
    events = _events().with_columns(
        pl.when(pl.col("type") == "impression").then(pl.lit("epsilon_greedy:0.3")).alias("policy")
    )
    with pytest.raises(DataError, match="'epsilon_greedy:0.3' but log no p_shown.*customer 'c', offer 'o1'"):
        logged_slots(events)
    greedy = events.with_columns(pl.when(pl.col("p_shown").is_null()).then(pl.lit("greedy")).alias("policy"))
    assert logged_slots(greedy).get_column("p_shown").to_list() == [0.8, 0.2, 1.0]


def test_an_unreadable_timestamp_or_probability_is_named_not_read_as_missing() -> None:
    # CSV events arrive as text: "soon" must not become a slot without reward, "high" not a probability of 1
    text = _events().with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"), pl.col("p_shown").cast(str))
    assert logged_slots(text).get_column("reward").to_list() == [1.0, 0.0, 1.0]
    late = text.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("soon")).otherwise("timestamp").alias("timestamp")
    )
    with pytest.raises(
        DataError, match="1 event\\(s\\) have an unreadable 'timestamp' \\(first: event 4, value 'soon'"
    ):
        logged_slots(late)
    high = text.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("high")).otherwise("p_shown").alias("p_shown")
    )
    with pytest.raises(DataError, match="unreadable 'p_shown' \\(first: event 3, value 'high'"):
        logged_slots(high)
