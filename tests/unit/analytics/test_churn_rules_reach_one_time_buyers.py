"""The example win-back rule reaches one-time buyers long gone once the CLV model can say they are gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from recsys.analytics.lifecycle import LifecycleConfig
from recsys.analytics.profiles import AnalyticsConfig, build_profiles
from recsys.columns import ProfileColumns as P
from recsys.nba.offers import load_catalog
from tests.helpers.btyd_sim import simulate_pnbd, to_transactions

OFFERS = Path(__file__).resolve().parents[3] / "examples" / "offers.toml"
END = "2024-12-31"
# Lifecycle stages by days switched off: whether a customer is "at risk" then depends on the model's churn risk only
MODEL_ONLY = LifecycleConfig(new_days=30, active_days=10_000, lapsed_days=10_000, reactivation_gap_days=10_000)


@pytest.fixture(scope="module")
def transactions() -> pl.DataFrame:
    # CDNOW-like Pareto/NBD customers in days, plus two one-time buyers: one 330 days ago, one 40 days ago
    x, t_x, T, _ = simulate_pnbd(800, 0.55, 74.0, 0.61, 82.0, T_max=365.0, holdout=0.0, seed=11)
    tx = to_transactions(x, t_x, T, end=END, seed=11)
    end = datetime.fromisoformat(END).replace(tzinfo=UTC)
    extra = pl.DataFrame(
        {
            "customer_id": ["gone", "recent"],
            "item_id": "i1",
            "timestamp": [end - timedelta(days=330), end - timedelta(days=40)],
            "amount": 20.0,
            "quantity": 1.0,
            "price": 20.0,
        }
    ).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    return pl.concat([tx, extra])


def _profiles(transactions: pl.DataFrame, model: str) -> pl.DataFrame:
    config = AnalyticsConfig(time_unit="day", model=model, lifecycle=MODEL_ONLY)
    return build_profiles(transactions, calibration_end=END, config=config).profiles


def _eligible(profiles: pl.DataFrame, offer_id: str) -> set[str]:
    offer = next(o for o in load_catalog(OFFERS).offers if o.id == offer_id)
    assert offer.eligibility is not None
    return set(profiles.filter(offer.eligibility.mask(profiles))["customer_id"])


@pytest.mark.parametrize("model", ["mbgnbd", "pnbd"])
def test_a_one_time_buyer_long_gone_gets_churn_risk_above_half_and_the_winback_offer(
    transactions: pl.DataFrame, model: str
) -> None:
    profiles = _profiles(transactions, model)
    risk = dict(profiles.select("customer_id", P.churn_risk).iter_rows())
    assert risk["gone"] > 0.5
    assert risk["recent"] < risk["gone"]
    one_time = profiles.filter(pl.col(P.frequency) == 0)
    assert (one_time[P.churn_risk] > 0).all()
    assert "gone" in _eligible(profiles, "winback15")


def test_under_bgnbd_the_churn_clause_never_reaches_a_one_time_buyer(transactions: pl.DataFrame) -> None:
    # the behaviour that motivated MBG/NBD and Pareto/NBD: P(alive) = 1 without a repeat purchase
    profiles = _profiles(transactions, "bgnbd")
    one_time = profiles.filter(pl.col(P.frequency) == 0)
    assert (one_time[P.churn_risk] == 0).all()
    assert "gone" not in _eligible(profiles, "winback15")


def test_a_new_customer_gets_the_welcome_offer_not_the_winback_even_with_high_churn_risk() -> None:
    catalog = {o.id: o for o in load_catalog(OFFERS).offers}
    new = {"lifecycle": "new", "churn_risk": 0.6}
    risky = {"lifecycle": "active", "churn_risk": 0.6}
    assert catalog["winback15"].eligibility is not None and catalog["welcome10"].eligibility is not None
    assert not catalog["winback15"].eligibility.evaluate(new)
    assert catalog["welcome10"].eligibility.evaluate(new)
    assert catalog["winback15"].eligibility.evaluate(risky)
    assert not catalog["winback15"].eligibility.evaluate({"lifecycle": "active", "churn_risk": 0.2})
