"""Response data from campaign history: features only from before the campaign, labels from redemptions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.nba.propensity import LogisticPropensity
from tests.helpers.campaign_history import FEATURES, LOG_FEATURES, CompleteJourney, response_table
from tests.helpers.scoring import roc_auc

START = dt.datetime(2017, 6, 1)


def tiny(extra_after_start: bool) -> CompleteJourney:
    tx_rows = [
        (1, 10, 100, 5.0, 0.0, START - dt.timedelta(days=10)),
        (1, 11, 200, 3.0, 1.0, START - dt.timedelta(days=40)),
        (2, 12, 200, 8.0, 0.0, START - dt.timedelta(days=5)),
    ]
    if extra_after_start:
        tx_rows += [
            (1, 13, 100, 500.0, 0.0, START + dt.timedelta(days=1)),
            (2, 14, 100, 90.0, 0.0, START + dt.timedelta(days=2)),
        ]
    tx = pl.DataFrame(
        tx_rows,
        schema=["household_id", "basket_id", "product_id", "sales_value", "coupon_disc", "transaction_timestamp"],
        orient="row",
    )
    return CompleteJourney(
        transactions=tx,
        campaigns=pl.DataFrame({"campaign_id": [7, 7], "household_id": [1, 2]}),
        descriptions=pl.DataFrame(
            {
                "campaign_id": [7],
                "campaign_type": ["Type A"],
                "start_date": [START],
                "end_date": [START + dt.timedelta(days=30)],
            }
        ),
        coupons=pl.DataFrame({"coupon_upc": [1], "product_id": [100], "campaign_id": [7]}),
        redemptions=pl.DataFrame(
            {
                "household_id": [1],
                "coupon_upc": [1],
                "campaign_id": [7],
                "redemption_date": [START + dt.timedelta(days=3)],
            }
        ),
    )


def test_features_use_only_transactions_before_the_campaign_start() -> None:
    before, after = response_table(tiny(False)), response_table(tiny(True))
    assert before.select(FEATURES).equals(after.select(FEATURES))
    row = before.filter(pl.col("household_id") == 1).row(0, named=True)
    assert row["redeemed"] is True and row["target_spend_share"] == pytest.approx(5.0 / 8.0)
    assert row["days_since_last_purchase"] == pytest.approx(10.0) and row["type_a"] == 1.0
    assert before.filter(pl.col("household_id") == 2).get_column("redeemed").to_list() == [False]


@pytest.mark.shared_data
def test_time_split_propensity_beats_the_target_auc_on_the_complete_journey(shared_data: Path) -> None:
    folder = shared_data / "completejourney"
    names = ("transactions", "campaigns", "campaign_descriptions", "coupons", "coupon_redemptions")
    table = response_table(CompleteJourney(*(pl.read_parquet(folder / f"{n}.parquet") for n in names)))
    cut = dt.datetime(2017, 8, 1)
    train, test = table.filter(pl.col("start_date") < cut), table.filter(pl.col("start_date") >= cut)
    model = LogisticPropensity(FEATURES, LOG_FEATURES).fit(
        train.select(FEATURES).to_numpy(), train.get_column("redeemed").to_numpy()
    )
    p = model.predict_proba(test.select(FEATURES).to_numpy())
    y = test.get_column("redeemed").to_numpy()
    assert roc_auc(p, y) >= 0.75
    assert abs(float(np.mean(p)) - float(np.mean(y))) < 0.03
