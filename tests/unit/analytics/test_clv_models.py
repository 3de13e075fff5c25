"""MBG/NBD and Pareto/NBD beside BG/NBD: likelihoods, recovery from their own processes, forecasts, one interface."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln, hyp2f1

from recsys.analytics.btyd import MODELS, check_model_name, make_model, model_from_dict
from recsys.analytics.mbgnbd import ModifiedBetaGeoModel
from recsys.analytics.pareto_nbd import ParetoNBDModel
from recsys.analytics.pareto_nbd import loglik_terms as pnbd_loglik
from recsys.exceptions import ConfigError
from tests.helpers.btyd_sim import simulate_mbgnbd, simulate_pnbd

FITTED = {  # CDNOW-like parameters of each model (weeks)
    "bgnbd": (0.243, 4.414, 0.793, 2.426),
    "mbgnbd": (0.525, 6.183, 0.891, 1.614),
    "pnbd": (0.553, 10.578, 0.606, 11.669),
}


def _model(name: str):
    return model_from_dict(name, dict(zip(MODELS[name].param_names, FITTED[name])))


def _pnbd_loglik_by_quadrature(params: tuple[float, ...], x: float, t_x: float, T: float) -> float:
    r, alpha, s, beta = params
    const = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    integral = quad(lambda y: (alpha + y) ** -(r + x) * (beta + y) ** -(s + 1), t_x, T, epsabs=0, epsrel=1e-12)[0]
    return float(const + np.log(alive + s * integral))


@pytest.mark.parametrize("params", [(0.55, 10.6, 0.6, 11.7), (0.55, 2.0, 0.6, 30.0), (2.0, 0.5, 1.5, 0.2)])
def test_pareto_nbd_likelihood_equals_the_integral_it_is_derived_from(params: tuple[float, ...]) -> None:
    rng = np.random.default_rng(1)
    T = rng.uniform(0.5, 80, 60)
    x = rng.integers(0, 60, 60).astype(float)
    t_x = np.where(x > 0, rng.uniform(0, 1, 60) * T, 0.0)
    ours = pnbd_loglik(np.array(params), x, t_x, T)
    reference = [_pnbd_loglik_by_quadrature(params, *row) for row in zip(x, t_x, T)]
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-8)


def test_mbgnbd_forecast_in_euler_form_equals_the_published_formula() -> None:
    r, alpha, a, b = FITTED["mbgnbd"]
    model = _model("mbgnbd")
    x, t_x, T, t = np.array([0.0, 2, 7]), np.array([0.0, 30.43, 20.0]), np.array([38.86, 38.86, 30.0]), 39.0
    hyp = hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
    published = (a + b + x) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    published /= 1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    np.testing.assert_allclose(model.conditional_expected(t, x, t_x, T), published, rtol=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_forecasts_a_customer_who_just_bought_like_its_cohort_curve(name: str) -> None:
    model = _model(name)
    t = np.array([1.0, 10.0, 52.0])
    np.testing.assert_allclose(model.conditional_expected(t, 0.0, 0.0, 0.0), model.expected(t), rtol=1e-9)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_round_trips_through_its_dict_and_keeps_p_alive_a_probability(name: str) -> None:
    model = _model(name)
    again = model_from_dict(name, model.to_dict())
    x, t_x = np.array([0.0, 1, 5, 20]), np.array([0.0, 3, 10, 30])
    T = np.full(4, 39.0)
    np.testing.assert_array_equal(again.p_alive(x, t_x, T), model.p_alive(x, t_x, T))
    p = model.p_alive(x, t_x, T)
    assert ((p >= 0) & (p <= 1)).all()
    # staying silent longer never makes a customer more likely to be alive
    assert (model.p_alive(x, t_x, T + 20) <= p + 1e-12).all()


def test_only_bgnbd_calls_every_one_time_buyer_alive() -> None:
    long_gone = {name: float(_model(name).p_alive(0.0, 0.0, 60.0)) for name in MODELS}
    assert long_gone["bgnbd"] == 1.0
    assert long_gone["mbgnbd"] < 0.5 and long_gone["pnbd"] < 0.5
    # and the longer since the only purchase, the lower
    assert _model("mbgnbd").p_alive(0.0, 0.0, 5.0) > long_gone["mbgnbd"]
    assert _model("pnbd").p_alive(0.0, 0.0, 5.0) > long_gone["pnbd"]


def test_mbgnbd_fit_recovers_the_parameters_of_its_own_process() -> None:
    true = (0.8, 6.0, 0.9, 2.5)
    x, t_x, T, _ = simulate_mbgnbd(20_000, *true, T_max=60.0, holdout=0.0, seed=5)
    fitted = ModifiedBetaGeoModel().fit(x, t_x, T).params_
    # the purchase process is pinned closely; the dropout's Beta parameters less so (sampling error of ~10 %)
    np.testing.assert_allclose(fitted[:2], true[:2], rtol=0.1)
    np.testing.assert_allclose(fitted[2:], true[2:], rtol=0.35)


def test_pareto_nbd_fit_recovers_the_parameters_of_its_own_process() -> None:
    true = (0.8, 6.0, 0.9, 12.0)
    x, t_x, T, _ = simulate_pnbd(20_000, *true, T_max=60.0, holdout=0.0, seed=6)
    fitted = ParetoNBDModel().fit(x, t_x, T).params_
    np.testing.assert_allclose(fitted[:2], true[:2], rtol=0.1)
    np.testing.assert_allclose(fitted[2:], true[2:], rtol=0.35)


@pytest.mark.parametrize(
    ("name", "simulate"),
    [("mbgnbd", simulate_mbgnbd), ("pnbd", simulate_pnbd)],
)
def test_fitted_model_forecasts_the_holdout_of_its_own_process(name: str, simulate) -> None:
    x, t_x, T, holdout = simulate(30_000, *FITTED[name], T_max=39.0, holdout=39.0, seed=7)
    model = make_model(name).fit(x, t_x, T)
    predicted = model.conditional_expected(39.0, x, t_x, T)
    assert predicted.sum() == pytest.approx(holdout.sum(), rel=0.05)
    # and per calibration frequency (the papers' conditional check), where there are enough customers
    for k in (0, 1, 3):
        mask = x == k
        assert predicted[mask].mean() == pytest.approx(holdout[mask].mean(), rel=0.15, abs=0.02), k


def test_unknown_model_names_are_refused_with_the_choices() -> None:
    assert check_model_name("auto") == "auto"
    with pytest.raises(ConfigError, match="bgnbd, mbgnbd, pnbd"):
        check_model_name("pareto")
    with pytest.raises(ConfigError, match="missing"):
        model_from_dict("pnbd", {"r": 1.0, "alpha": 1.0})


def test_pareto_nbd_on_many_customers_fits_a_seeded_sample_and_still_recovers_the_process() -> None:
    true = (0.8, 6.0, 0.9, 12.0)
    x, t_x, T, _ = simulate_pnbd(60_000, *true, T_max=60.0, holdout=0.0, seed=9)
    model = ParetoNBDModel(max_customers=8_000).fit(x, t_x, T)
    assert model.fitted_on_ == 8_000
    np.testing.assert_allclose(model.params_, true, rtol=0.3)
    # the same seed gives the same fit, and the log-likelihood is over every customer
    again = ParetoNBDModel(max_customers=8_000).fit(x, t_x, T)
    np.testing.assert_array_equal(again.params_, model.params_)
    assert model.loglik_ == pytest.approx(float(pnbd_loglik(model.params_, x, t_x, T).sum()), rel=1e-9)


@pytest.mark.parametrize("name", list(MODELS))
def test_clv_in_chunks_equals_the_month_by_month_discounted_forecast(name: str, monkeypatch) -> None:
    import recsys.analytics.clv as clv_module

    model = _model(name)
    rng = np.random.default_rng(3)
    T = rng.uniform(5, 39, 25)
    x = rng.integers(0, 8, 25).astype(float)
    t_x = np.where(x > 0, rng.uniform(0, 1, 25) * T, 0.0)
    spend = rng.uniform(10, 50, 25)
    config = clv_module.ClvConfig(horizon_days=365, margin=0.3, annual_discount=0.1)
    monkeypatch.setattr(clv_module, "CHUNK", 7)
    clv, expected = clv_module.customer_lifetime_value(model, x, t_x, T, spend, unit_days=7.0, config=config)
    monthly = 1.1 ** (1 / 12) - 1
    edges = [30.0 * k / 7 for k in range(1, 13)] + [365 / 7]
    by_hand, previous = np.zeros(25), np.zeros(25)
    for k, edge in enumerate(edges, start=1):
        cumulative = model.conditional_expected(edge, x, t_x, T)
        by_hand += (cumulative - previous) / (1 + monthly) ** k
        previous = cumulative
    np.testing.assert_allclose(clv, by_hand * spend * 0.3, rtol=1e-10)
    np.testing.assert_allclose(expected, previous, rtol=1e-10)
