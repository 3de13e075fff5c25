"""Arbitration: budgets and caps always hold, ineligible pairs never assigned, value close to the LP optimum."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from recsys.nba.arbitration import Budgets, assign


def instance(seed: int, n: int = 200, m: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, Budgets]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.5, (n, m)).astype(np.float32)
    value, cost = rng.uniform(5, 30, m), rng.uniform(1, 4, m)
    score = (p * (value - cost)).astype(np.float32)
    score[rng.random((n, m)) < 0.3] = np.nan
    budgets = Budgets(
        np.where(rng.random(m) < 0.5, rng.integers(10, 60, m), np.inf).astype(float),
        np.where(rng.random(m) < 0.5, rng.uniform(3, 15, m), np.inf),
        np.where(rng.random(m) < 0.3, rng.uniform(5, 30, m), np.inf),
    )
    return score, p, cost, budgets


def lp_optimum(score: np.ndarray, p: np.ndarray, cost: np.ndarray, budgets: Budgets, cap: int) -> float:
    n, m = score.shape
    s = np.nan_to_num(score, nan=0.0).ravel()
    rows = [sp.kron(sp.eye(n), np.ones((1, m)))]
    bounds_rhs = [np.full(n, cap)]
    for weights, limits in ((np.ones_like(p), budgets.contacts), (p, budgets.redemptions), (p * cost, budgets.spend)):
        block = sp.lil_matrix((m, n * m))
        for o in range(m):
            block[o, o::m] = weights[:, o]
        rows.append(block.tocsr())
        bounds_rhs.append(np.minimum(limits, 1e12))
    ok = np.isfinite(score.ravel()) & (s > 0)
    result = linprog(
        -s,
        A_ub=sp.vstack(rows),
        b_ub=np.concatenate(bounds_rhs),
        bounds=[(0, 1 if x else 0) for x in ok],
        method="highs",
    )
    return -float(result.fun)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("cap", [1, 2])
def test_assignment_is_feasible_and_within_its_certified_gap_of_the_lp(seed: int, cap: int) -> None:
    score, p, cost, budgets = instance(seed)
    result = assign(score, p, cost, budgets, cap)
    chosen = np.zeros(score.shape, dtype=bool)
    chosen[result.rows, result.cols] = True
    assert (chosen.sum(axis=1) <= cap).all()
    assert (chosen.sum(axis=0) <= budgets.contacts).all()
    assert ((p * chosen).sum(axis=0) <= budgets.redemptions + 1e-6).all()
    assert ((p * chosen * cost).sum(axis=0) <= budgets.spend + 1e-6).all()
    assert np.isfinite(score[chosen]).all() and (score[chosen] > 0).all()
    lp = lp_optimum(score, p, cost, budgets, cap)
    assert result.upper_bound >= lp - 1e-3  # the certificate is a true upper bound
    assert result.value >= 0.95 * lp
    assert result.value <= lp + 1e-3


def test_without_budgets_every_customer_gets_their_top_k_positive_offers() -> None:
    score = np.array([[3.0, 1.0, -1.0], [np.nan, 2.0, 5.0]], dtype=np.float32)
    result = assign(score, np.full(score.shape, 0.1, np.float32), np.zeros(3), Budgets.unlimited(3), cap=2)
    assert sorted(zip(result.rows.tolist(), result.cols.tolist())) == [(0, 0), (0, 1), (1, 1), (1, 2)]
    assert result.gap == pytest.approx(0.0)


def test_a_tight_contact_budget_goes_to_the_customers_who_gain_most() -> None:
    score = np.array([[1.0], [4.0], [2.0], [3.0]], dtype=np.float32)
    budgets = Budgets(np.array([2.0]), np.array([np.inf]), np.array([np.inf]))
    result = assign(score, np.full(score.shape, 0.2, np.float32), np.zeros(1), budgets, cap=1)
    assert sorted(result.rows.tolist()) == [1, 3]
