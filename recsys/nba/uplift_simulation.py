"""A semi-synthetic uplift check: real customers' profiles, a planted treatment effect that depends on the segment.

The Complete Journey has no control group, so the outcome is planted on its real households (their profiles from
``build_profiles``):

* without an offer a customer converts with ``sigmoid(−1.6 + 0.9·z(log orders) + 0.6·z(P(alive)))`` — loyal,
  active customers buy anyway;
* an offer adds ``EFFECT[segment]`` (RFM segment) to that probability: nothing for Champions, who buy anyway,
  most for the lapsing segments (Can't Lose, At Risk, About to Sleep).

An experiment treats a random half of the **experiment** customers (a random 60 %); both policies then target the
other 40 % (the **deployment** customers) under the same budget (``budget_share`` of them): the response policy by
a classifier fitted on the treated customers only (who converts when offered), the uplift policy by the
two-model learner (``recsys.nba.uplift.TwoModelUplift``). Each policy's incremental value is the planted effect
summed over the customers it targets (value 1 per conversion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import expit

from recsys.columns import ProfileColumns as P
from recsys.nba.uplift import TwoModelUplift

EFFECT = {
    "Champions": 0.0,
    "Loyal": 0.01,
    "Potential Loyalist": 0.04,
    "New": 0.06,
    "Promising": 0.06,
    "Need Attention": 0.10,
    "About to Sleep": 0.14,
    "Can't Lose": 0.20,
    "At Risk": 0.18,
    "Hibernating": 0.08,
    "Lost": 0.03,
}
DEFAULT_EFFECT = 0.05


@dataclass(frozen=True)
class UpliftCheck:
    """Incremental value captured by each policy under the same budget, and what it was measured on."""

    uplift_value: float
    response_value: float
    best_value: float  # targeting by the true effect (the ceiling)
    random_value: float
    targeted: int
    deployment: int

    @property
    def ratio(self) -> float:
        """Uplift policy's incremental value over the response policy's."""
        return self.uplift_value / self.response_value if self.response_value > 0 else float("inf")


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def planted(profiles: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(baseline P(convert), effect of an offer)`` per customer (see the module docstring)."""
    orders = np.log1p(profiles.get_column(P.orders).cast(pl.Float64).to_numpy())
    alive = profiles.get_column(P.p_alive).cast(pl.Float64).fill_null(0.5).to_numpy()
    base = expit(-1.6 + 0.9 * _z(orders) + 0.6 * _z(alive))
    effect = np.asarray([EFFECT.get(s, DEFAULT_EFFECT) for s in profiles.get_column(P.segment).to_list()])
    return base, np.minimum(effect, 1.0 - base)


def uplift_check(
    profiles: pl.DataFrame, seed: int, budget_share: float = 0.2, learner: str = "logistic"
) -> UpliftCheck:
    """Run the check once (seeded: the split, the treatment assignment and the outcomes)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    base, effect = planted(profiles)
    n = profiles.height
    experiment = rng.random(n) < 0.6
    treated = rng.random(n) < 0.5
    converted = (rng.random(n) < base + treated * effect).astype(np.float64)
    train, deploy = profiles.filter(pl.Series(experiment)), profiles.filter(pl.Series(~experiment))
    t, y = treated[experiment], converted[experiment]
    model = TwoModelUplift(learner=learner, seed=seed).fit(train, t, y)
    assert model.design_ is not None
    x_train, x_deploy = model.design_.transform(train), model.design_.transform(deploy)
    response = LogisticRegression(C=model.c, max_iter=2000).fit(x_train[t], y[t])
    budget = int(budget_share * deploy.height)
    true_effect = effect[~experiment]

    def captured(score: np.ndarray) -> float:
        return float(true_effect[np.argsort(-score, kind="stable")[:budget]].sum())

    return UpliftCheck(
        uplift_value=captured(model.uplift(deploy)),
        response_value=captured(response.predict_proba(x_deploy)[:, 1]),
        best_value=captured(true_effect + 1e-9 * rng.random(len(true_effect))),
        random_value=float(true_effect.mean() * budget),
        targeted=budget,
        deployment=deploy.height,
    )
