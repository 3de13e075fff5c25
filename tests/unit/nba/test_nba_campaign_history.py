"""The Complete Journey's campaigns through the CLI's path: features only from before the campaign, labels from
redemptions in the campaign's window, and the time-split targets on the real data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from recsys.nba.cj_history import complete_journey_history, complete_journey_purchases, read_complete_journey
from recsys.nba.propensity_fit import fit_propensity, response_table
from recsys.nba.response_features import purchases_frame

START = dt.datetime(2017, 6, 1)
VALID_FROM = dt.datetime(2017, 8, 1, tzinfo=dt.UTC)


def tiny(extra_after_start: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    tx_rows = [
        (1, 10, 100, 5.0, 0.0, START - dt.timedelta(days=10)),
        (1, 11, 200, 3.0, -1.0, START - dt.timedelta(days=40)),
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
    history = complete_journey_history(
        campaigns=pl.DataFrame({"campaign_id": [7, 7], "household_id": [1, 2]}),
        campaign_descriptions=pl.DataFrame(
            {
                "campaign_id": [7],
                "campaign_type": ["Type A"],
                "start_date": [START],
                "end_date": [START + dt.timedelta(days=30)],
            }
        ),
        coupons=pl.DataFrame({"coupon_upc": [1], "product_id": [100], "campaign_id": [7]}),
        coupon_redemptions=pl.DataFrame(
            {
                "household_id": [1],
                "coupon_upc": [1],
                "campaign_id": [7],
                "redemption_date": [START + dt.timedelta(days=3)],
            }
        ),
    )
    table, features = response_table(history, purchases_frame(complete_journey_purchases(tx)))
    return table, pl.DataFrame({"feature": features})


def test_features_use_only_transactions_before_the_campaign_start() -> None:
    (before, features), (after, _) = tiny(False), tiny(True)
    names = features.get_column("feature").to_list()
    assert before.select(names).equals(after.select(names))
    row = before.filter(pl.col("customer_id") == "1").row(0, named=True)
    assert row["accepted"] is True and row["target_spend_share"] == pytest.approx(5.0 / 8.0)
    assert row["days_since_last_purchase"] == pytest.approx(10.0) and row["kind=Type A"] == 1.0
    assert row["discount_share"] == pytest.approx(1.0 / 8.0)
    assert before.filter(pl.col("customer_id") == "2").get_column("accepted").to_list() == [False]


@pytest.mark.shared_data
def test_the_cli_fit_on_the_benchmark_split_learns_only_from_the_training_period(shared_data: Path) -> None:
    folder = shared_data / "completejourney"
    history = read_complete_journey(folder)
    purchases = purchases_frame(complete_journey_purchases(pl.read_parquet(folder / "transactions.parquet")))
    report = fit_propensity(history, purchases, valid_from=VALID_FROM).report
    split = report["split"]
    assert split["train_exposures"] == 2_850
    # 3,739 exposures start on or after the cut; 785 of them have windows that run past the data's last day and
    # have no final outcome, so the 2,954 closed ones are scored
    assert split["valid_exposures"] == 2_954 and split["valid_open_at_data_end"] == 785
    # campaigns 11 and 12 (384 exposures) run across the cut: censored there (12) or dropped (11), never labelled
    # by their redemptions in August
    assert (split["train_censored_at_cut"], split["train_dropped_unobserved"]) == (170, 214)
    assert report["selection"]["folds"] and report["selection"]["folds"][-1]["to"] == VALID_FROM.isoformat()
    # the figures themselves (AUC 0.789, ECE 0.055 against the targets 0.80 / 0.02) are benchmarks/README.md's;
    # here: the model ranks far better than chance and its ECE is a real miscalibration, above the noise floor
    assert report["auc"] > 0.75
    assert report["ece_noise_floor"] < report["ece"]
