"""Hyperparameter search (random or grid) on the *tuning* split, bounded in wall time.

The search only ever receives the tuning :class:`~recsys.evaluation.runner.EvalData` (train before validation →
validation); refitting the winner on train + validation and scoring on test is the caller's next step.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recsys.evaluation.runner import EvalData, ModelFactory, evaluate_model


@dataclass(frozen=True)
class Trial:
    """One evaluated parameter set."""

    params: dict[str, Any]
    score: float
    seconds: float


@dataclass(frozen=True)
class SearchResult:
    """The best parameters (``{}`` when no trial scored), their score and every trial in the order run."""

    best_params: dict[str, Any]
    best_score: float
    trials: list[Trial] = field(default_factory=list)
    stopped_by_budget: bool = False


def candidates(
    space: Mapping[str, Sequence[Any]],
    *,
    mode: Literal["random", "grid"] = "random",
    max_trials: int = 20,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Return the parameter sets to try: the full grid (in order, truncated) or distinct random draws from it.

    The first candidate is always the first value of every parameter, so list the defaults first.
    """
    names = list(space)
    grid = [dict(zip(names, values)) for values in itertools.product(*(space[n] for n in names))]
    if mode == "grid" or len(grid) <= max_trials:
        return grid[:max_trials]
    if mode != "random":
        raise ValueError(f"search mode must be 'random' or 'grid', got {mode!r}")
    rng = np.random.default_rng(seed)
    rest = rng.choice(np.arange(1, len(grid)), size=max_trials - 1, replace=False)
    return [grid[0]] + [grid[int(i)] for i in rest]


def search(
    build: Callable[[dict[str, Any]], ModelFactory],
    space: Mapping[str, Sequence[Any]],
    tuning: EvalData,
    *,
    metric: str = "ndcg@10",
    time_budget: float = 60.0,
    max_trials: int = 20,
    mode: Literal["random", "grid"] = "random",
    seed: int = 0,
    ks: Sequence[int] = (10,),
    on_trial: Callable[[Trial], None] | None = None,
) -> SearchResult:
    """Try parameter sets from ``space`` on ``tuning`` until ``time_budget`` seconds or ``max_trials`` run out.

    ``build(params)`` returns a model factory. The first trial always runs; a new trial starts only while the
    budget is not spent, so the search overruns by at most one trial. Returns the best by ``metric`` (higher is
    better). Raises ``KeyError`` if ``metric`` is not among the computed metrics.
    """
    started = time.perf_counter()
    best_params: dict[str, Any] = {}
    best_score = -math.inf
    trials: list[Trial] = []
    stopped = False
    for params in candidates(space, mode=mode, max_trials=max_trials, seed=seed):
        if trials and time.perf_counter() - started >= time_budget:
            stopped = True
            break
        t0 = time.perf_counter()
        metrics = evaluate_model(build(params), tuning, ks=ks)
        score = metrics[metric]
        trial = Trial(params=dict(params), score=float(score), seconds=time.perf_counter() - t0)
        trials.append(trial)
        if on_trial is not None:
            on_trial(trial)
        if not math.isnan(score) and score > best_score:
            best_params, best_score = dict(params), float(score)
    return SearchResult(best_params=best_params, best_score=best_score, trials=trials, stopped_by_budget=stopped)
