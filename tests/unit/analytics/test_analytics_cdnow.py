"""The published CDNOW results (Fader, Hardie & Lee 2005; Fader & Hardie 2013) are reproduced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.analytics import BetaGeoModel, GammaGammaModel, rfm_summary
from tests.helpers.cdnow import read_cdnow

PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow(shared_data: Path) -> Path:
    return shared_data / "cdnow"


@pytest.fixture(scope="module")
def bg_fit(cdnow: Path) -> BetaGeoModel:
    d = pl.read_csv(cdnow / "cdnow_customers_summary.csv")
    return BetaGeoModel().fit(d["frequency"].to_numpy(), d["recency"].to_numpy(), d["T"].to_numpy())


def test_bgnbd_fit_reproduces_published_parameters_and_loglik(bg_fit: BetaGeoModel) -> None:
    fitted = bg_fit.to_dict()
    for name, value in PUBLISHED_BG.items():
        assert fitted[name] == pytest.approx(value, rel=0.005), name
    assert fitted["loglik"] == pytest.approx(-9582.4, abs=0.1)


def test_bgnbd_conditional_expectation_matches_hardie_sheet(bg_fit: BetaGeoModel) -> None:
    assert float(bg_fit.conditional_expected(39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=0.001)


def test_bgnbd_unconditional_expectation_checkpoints() -> None:
    model = BetaGeoModel.from_params(0.2425945, 4.4136019, 0.7929199, 2.4258881)
    t = [0.1429, 1, 3, 31.8571, 32, 78]
    expected = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    np.testing.assert_allclose(model.expected(t), expected, atol=6e-4)


def test_gamma_gamma_fit_reproduces_published_parameters(cdnow: Path) -> None:
    d = pl.read_csv(cdnow / "cdnow_customers_summary_with_transactions.csv")
    model = GammaGammaModel().fit(d["x"].to_numpy(), d["zbar"].to_numpy())
    assert model.n_customers_ == 946
    for got, want in zip(model.params_, (6.25, 3.74, 15.44)):
        assert got == pytest.approx(want, rel=0.005)
    assert model.loglik_ == pytest.approx(-4055.92, abs=0.05)


def test_gamma_gamma_conditional_spend_matches_hardie_sheet(cdnow: Path) -> None:
    d = pl.read_csv(cdnow / "cdnow_customers_summary_with_transactions.csv").head(10)
    model = GammaGammaModel.from_params(6.25, 3.74, 15.44)
    published = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    # The sheet rounds intermediate values; 0.06 covers that (the largest gap is 35.22 vs 35.17).
    np.testing.assert_allclose(
        model.conditional_expected_spend(d["x"].to_numpy(), d["zbar"].to_numpy()), published, atol=0.06
    )


def test_summary_from_raw_transactions_matches_published_summary(cdnow: Path) -> None:
    tx = read_cdnow(cdnow / "CDNOW_sample.txt")
    ours = rfm_summary(tx, "1997-09-30", time_unit="week")
    ref = pl.read_csv(cdnow / "cdnow_customers_summary_with_transactions.csv").with_columns(
        pl.col("ID").cast(pl.String)
    )
    joined = ours.join(ref, left_on="customer_id", right_on="ID", how="full")
    assert joined.height == ref.height == ours.height == 2357
    assert (joined["frequency"] == joined["x"]).all()
    # The file rounds recency and T to 2 decimals (weeks = days / 7).
    assert (joined["recency"].round(2) - joined["t_x"]).abs().max() < 1e-9
    assert (joined["T"].round(2) - joined["T_right"]).abs().max() < 1e-9
    repeat = joined.filter(pl.col("x") > 0)
    # zbar is rounded half-up to cents: the unrounded mean is within half a cent.
    assert (repeat["monetary"] - repeat["zbar"]).abs().max() <= 0.005 + 1e-9


def test_fit_on_own_summary_matches_published_parameters(cdnow: Path) -> None:
    s = rfm_summary(read_cdnow(cdnow / "CDNOW_sample.txt"), "1997-09-30", time_unit="week")
    bg = BetaGeoModel().fit(s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy())
    for name, value in PUBLISHED_BG.items():
        assert bg.to_dict()[name] == pytest.approx(value, rel=0.005), name
    gg = GammaGammaModel().fit(s["frequency"].to_numpy(), s["monetary"].to_numpy())
    for got, want in zip(gg.params_, (6.25, 3.74, 15.44)):
        assert got == pytest.approx(want, rel=0.005)
