"""The published MBG/NBD and Pareto/NBD estimates on CDNOW (2,357 customers, 39-week calibration) are reproduced
within 1 %, and on CDNOW both models see one-time buyers that BG/NBD calls alive.

References (see ../shared/data/README.md, section 4a):

* Pareto/NBD: r = 0.553, α = 10.578, s = 0.606, β = 11.669, LL = −9595.0 — Fader, Hardie & Lee (2005), as quoted by
  CLVTools' correctness test and lifetimes; the BTYD walkthrough's E[X(52) | 26, 30.86, 31] = 25.46 and
  P(alive | 26, 30.86, 31) = 0.9979 at its own estimates (0.5534, 10.5802, 0.6061, 11.6562).
* MBG/NBD: r = 0.525, α = 6.183, a = 0.891, b = 1.614 — BTYDplus (Platzer), as quoted by lifetimes' test. Batislam
  et al. (2007) introduced MBG/NBD on grocery retail data, not on CDNOW, so this is the reference there is.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from recsys.analytics.mbgnbd import ModifiedBetaGeoModel
from recsys.analytics.pareto_nbd import ParetoNBDModel
from tests.helpers.cdnow import read_cdnow
from training.jobs.analyze import run_analyze

pytestmark = pytest.mark.shared_data

PUBLISHED_PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PUBLISHED_MBG = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


@pytest.fixture(scope="module")
def cdnow_summary(shared_data: Path) -> tuple:
    d = pl.read_csv(shared_data / "cdnow" / "cdnow_customers_summary.csv")
    return tuple(d[c].to_numpy().astype(float) for c in ("frequency", "recency", "T"))


def test_pareto_nbd_fit_reproduces_the_published_cdnow_estimates(cdnow_summary: tuple) -> None:
    fitted = ParetoNBDModel().fit(*cdnow_summary).to_dict()
    for name, value in PUBLISHED_PNBD.items():
        assert fitted[name] == pytest.approx(value, rel=0.01), name
    assert fitted["loglik"] == pytest.approx(-9595.0, abs=0.1)


def test_mbgnbd_fit_reproduces_the_published_cdnow_estimates(cdnow_summary: tuple) -> None:
    fitted = ModifiedBetaGeoModel().fit(*cdnow_summary).to_dict()
    for name, value in PUBLISHED_MBG.items():
        assert fitted[name] == pytest.approx(value, rel=0.01), name


def test_pareto_nbd_forecast_and_p_alive_match_the_btyd_walkthrough() -> None:
    model = ParetoNBDModel.from_params(0.5534, 10.5802, 0.6061, 11.6562)
    assert float(model.p_alive(26.0, 30.86, 31.0)) == pytest.approx(0.9979, abs=0.001)
    fitted = ParetoNBDModel.from_params(*PUBLISHED_PNBD.values())
    assert float(fitted.conditional_expected(52.0, 26.0, 30.86, 31.0)) == pytest.approx(25.46, abs=0.01)


def test_every_cdnow_one_time_buyer_gets_churn_risk_above_half_under_mbgnbd_and_pareto_nbd(
    cdnow_summary: tuple,
) -> None:
    x, t_x, T = cdnow_summary
    one_time = x == 0
    assert one_time.sum() == 1411
    for model in (ModifiedBetaGeoModel().fit(x, t_x, T), ParetoNBDModel().fit(x, t_x, T)):
        churn = 1.0 - model.p_alive(x, t_x, T)
        assert (churn[one_time] > 0.5).all(), model.label


def test_analyze_on_cdnow_at_39_weeks_records_the_choice_and_every_holdout_error(
    shared_data: Path, tmp_path: Path
) -> None:
    tx = read_cdnow(shared_data / "cdnow" / "CDNOW_sample.txt")
    summary = run_analyze(SimpleNamespace(transactions=tx, catalog=None), tmp_path, calibration_end="1997-09-30")
    selection = json.loads((tmp_path / "models.json").read_text())["model_selection"]
    assert selection["split"]["calibration_end"] == "1997-09-30"
    assert selection["split"]["holdout_length"] == pytest.approx(39.0)
    assert summary["holdout"]["customers"] == 2357
    # purchase days in weeks 40-78 (several purchases on one day count once, as in the calibration summary)
    assert summary["holdout"]["actual_total"] == 1882
    assert set(selection["models"]) == {"bgnbd", "mbgnbd", "pnbd"}
    assert selection["models"]["pnbd"]["params"]["r"] == pytest.approx(PUBLISHED_PNBD["r"], rel=0.01)
    assert summary["one_time_buyers"] == {"customers": 1411, "churn_risk_at_least_0_5": 1411}
