"""Offline evaluation job: split, (optionally) tune on validation, refit on train + validation, score on test.

``run_evaluate`` returns the ``results.json`` document::

    {"protocol": ..., "data": {...sizes, unseen counts...},
     "models": {"popularity": {"ndcg@10": ..., "recall@10": ..., "fit_seconds": ..., ...}, ...},
     "tuning": {"als": {"best_params": ..., "best_score": ..., "trials": n}, ...}}

Leakage rule: tuning (search and hybrid blend weights) sees only ``plan.tuning`` (train before validation →
validation); every reported figure comes from a model refit on ``plan.final.train`` with the tuned parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from rich.progress import Progress

from recsys.columns import Columns
from recsys.evaluation.metrics import DEFAULT_KS
from recsys.evaluation.protocols import make_plan
from recsys.evaluation.runner import EvalData, ModelFactory, evaluate_model, prepare
from recsys.evaluation.search import search

# Builder: parameters → model factory (fits a model on EvalData).
Builder = Callable[[dict[str, Any]], ModelFactory]

# The explore lists people serve as "discover" (only items new to the customer): the best explore recall comes from
# these, not from a mixed list in which a customer's own repeat items take most of the ten places.
EXPLORE_MODELS: tuple[str, ...] = ("popularity:new", "trending:new", "als:new", "item_knn_bm25:new")

DEFAULT_MODELS: tuple[str, ...] = (
    "popularity",
    "trending",
    "popular_in_category",
    "buy_again",
    "item_knn_cosine",
    "item_knn_bm25",
    "als",
    "bpr",
    "user_knn",
    "hybrid",
    "hybrid_ltr",
    *EXPLORE_MODELS,
)

# Search spaces (parameter names of the ``recsys.models`` constructors); the first value of each is tried first.
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "als": {
        "factors": [64, 32, 128, 256],
        "regularization": [0.05, 0.01, 0.1, 0.5, 1.0],
        "alpha": [2.0, 1.0, 5.0, 10.0, 20.0],
        "iterations": [15, 30],
        "bm25_k1": [100.0, 1.2, 10.0],
        "bm25_b": [0.8, 0.5, 1.0],
    },
    "bpr": {
        "factors": [64, 32, 128],
        "learning_rate": [0.05, 0.01, 0.1],
        "regularization": [0.01, 0.001, 0.1],
        "iterations": [100, 200],
    },
    "item_knn_cosine": {"neighbours": [100, 20, 50, 200, 500]},
    "item_knn_bm25": {"neighbours": [100, 20, 50, 200, 500], "bm25_k1": [1.2, 0.5, 2.0], "bm25_b": [0.75, 0.25, 1.0]},
    "buy_again": {"half_life_days": [90.0, 14.0, 30.0, 60.0, 180.0, 365.0]},
    "user_knn": {"neighbours": [50, 20, 100, 300], "half_life_days": [120.0, 60.0, 240.0]},
    # One fit takes about a minute on The Complete Journey, so within the usual budget this scores the defaults
    # on validation (reported under "tuning") and tries more only when the budget allows.
    # rounds is the most: boosting stops early on held-out training customers (the learned hybrid's default)
    "hybrid_ltr": {"rounds": [300, 150], "target_baskets": [10, 5, 20], "candidates": [100, 60, 150]},
}


# Written into results.json beside the figures: which convention each metric follows (recsys.evaluation.metrics).
METRIC_CONVENTIONS: dict[str, str] = {
    "ndcg@k": "usual: ideal DCG cut at min(k, |truth|), truth = the test items seen in training",
    "ndcg_basket@k": "next-basket (TIFU-KNN / TAIW code): ideal DCG over the whole test basket, items unseen in "
    "training included",
    "recall@k": "hits / test items seen in training",
    "recall_basket@k": "next-basket: hits / the whole test basket, items unseen in training included",
    "repeat_* / explore_*": "the usual convention over the test items the customer had / had not bought before",
}


def model_classes() -> dict[str, type]:
    """Return ``{name: class}`` of the recommenders registered in ``recsys.models.MODELS`` (imported lazily)."""
    from recsys.models import MODELS

    return dict(MODELS)


def fit_model(cls: type, params: Mapping[str, Any], data: EvalData) -> Any:
    """Build ``cls(**params)`` and fit it on ``data`` the way ``training`` does: counts + a matching decay matrix."""
    model = cls(**params)
    if hasattr(model, "item_categories") and data.catalog is not None:
        model.item_categories = item_category_codes(data)
    half_life = getattr(model, "half_life_days", None)
    recent = data.decayed(half_life) if half_life else data.recent
    return model.fit(data.train, recent=recent, transactions=data.transactions)


def item_category_codes(data: EvalData) -> np.ndarray | None:
    """Return an int category code per train item (``-1`` = not in the catalog), or ``None`` without categories."""
    catalog = data.catalog
    if catalog is None or Columns.category not in catalog.columns:
        return None
    items = pl.DataFrame({Columns.item_id: pl.Series(data.train.items.external_ids, dtype=pl.String)})
    joined = items.join(
        catalog.select(pl.col(Columns.item_id).cast(pl.String), pl.col(Columns.category)).unique(
            Columns.item_id, keep="first"
        ),
        on=Columns.item_id,
        how="left",
        maintain_order="left",
    )
    codes = joined.get_column(Columns.category).cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1)
    return codes.to_numpy()


NEW_SUFFIX = ":new"


class _NewItemsOnly:
    """A fitted model asked for items the customer has never bought (its "discover" list)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def recommend(self, customer_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.model.recommend(customer_idx, k, exclude_bought=True)


def model_registry() -> dict[str, Builder]:
    """Return ``{model name: builder}`` for every model in ``recsys.models``.

    ``<name>:new`` is the same model recommending only items new to the customer (``exclude_bought=True``), to
    measure how well it explores; the default model list ends with those of :data:`EXPLORE_MODELS`.
    """

    def builder(cls: type, new_only: bool = False) -> Builder:
        def build(params: dict[str, Any]) -> ModelFactory:
            def factory(data: EvalData) -> Any:
                model = fit_model(cls, params, data)
                return _NewItemsOnly(model) if new_only else model

            def prepare_inputs(data: EvalData) -> None:
                half_life = getattr(cls(**params), "half_life_days", None)
                data.decayed(half_life) if half_life else data.recent

            factory.prepare_inputs = prepare_inputs  # type: ignore[attr-defined]
            return factory

        return build

    classes = model_classes()
    registry = {name: builder(cls) for name, cls in classes.items()}
    registry.update({name + NEW_SUFFIX: builder(cls, new_only=True) for name, cls in classes.items()})
    return registry


def run_evaluate(
    transactions: pl.DataFrame,
    *,
    protocol: str,
    models: Sequence[str] | None = None,
    test_days: float = 30,
    validation_days: float | None = None,
    tune: bool = False,
    time_budget: float = 300.0,
    max_trials: int = 20,
    search_mode: Literal["random", "grid"] = "random",
    metric: str = "ndcg@10",
    ks: Sequence[int] = DEFAULT_KS,
    catalog: pl.DataFrame | None = None,
    params: Mapping[str, dict[str, Any]] | None = None,
    registry: Mapping[str, Builder] | None = None,
    spaces: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    bar: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate ``models`` (default: all in the registry) under ``protocol`` and return the results document (see
    module docstring).

    ``params``: fixed parameters per model (tuned ones override them). ``tune``: search the models that have a
    search space within ``time_budget`` seconds in total (split evenly between them). Raises ``ValueError`` for
    an unknown model or protocol and ``DataError`` when the data cannot be split.
    """
    registry = dict(registry) if registry is not None else model_registry()
    if models is None:  # every available model, in the usual table order, then the explore (":new") lists
        extra = sorted(m for m in set(registry) - set(DEFAULT_MODELS) if not m.endswith(NEW_SUFFIX))
        plain = [m for m in DEFAULT_MODELS if m in registry and not m.endswith(NEW_SUFFIX)]
        models = plain + extra + [m for m in EXPLORE_MODELS if m in registry]
    spaces = dict(spaces) if spaces is not None else SEARCH_SPACES
    unknown = [m for m in models if m not in registry]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {', '.join(registry)}")
    chosen = {name: dict((params or {}).get(name, {})) for name in models}

    with _stage(bar, "splitting and building matrices"):
        plan = make_plan(transactions, protocol, test_days=test_days, validation_days=validation_days)
        final = prepare(plan.final, catalog=catalog)
        blend = "hybrid" in models and "hybrid" in registry
        tuning = prepare(plan.tuning, catalog=catalog) if tune or blend else None

    tuning_report: dict[str, Any] = {}
    if tune and tuning is not None:
        searchable = [m for m in models if m in spaces]
        per_model = time_budget / max(len(searchable), 1)
        for name in searchable:
            task = bar.add_task(f"tuning {name}", total=max_trials) if bar else None
            fixed = chosen[name]
            result = search(
                lambda p, _name=name, _fixed=fixed: registry[_name]({**_fixed, **p}),
                spaces[name],
                tuning,
                metric=metric,
                time_budget=per_model,
                max_trials=max_trials,
                mode=search_mode,
                ks=sorted({int(metric.rsplit("@", 1)[1]), *ks}),
                on_trial=(lambda _t, _task=task: bar.advance(_task)) if bar and task is not None else None,
            )
            if bar and task is not None:
                bar.update(task, total=len(result.trials), completed=len(result.trials))
            chosen[name] = {**fixed, **result.best_params}
            tuning_report[name] = {
                "best_params": result.best_params,
                f"best_{metric}": result.best_score,
                "trials": len(result.trials),
                "stopped_by_budget": result.stopped_by_budget,
            }

    for name in models:  # "<model>:new" variants score with the parameters tuned for their model
        base = name.removesuffix(NEW_SUFFIX)
        if base != name and base in tuning_report:
            chosen[name] = {**chosen[base], **(params or {}).get(name, {})}

    if blend and tuning is not None:
        with _stage(bar, "tuning the hybrid's blend on validation"):
            chosen["hybrid"], tuning_report["hybrid"] = _tune_hybrid(
                registry["hybrid"], chosen, tuning, tuned=set(tuning_report), metric=metric
            )

    results: dict[str, dict[str, float]] = {}
    # "<model>:new" asks the model fitted for "<model>" (same parameters) instead of fitting it a second time
    shared = {m.removesuffix(NEW_SUFFIX) for m in models if m.endswith(NEW_SUFFIX)}
    fitted: dict[str, Any] = {}
    for name in models:
        task = bar.add_task(f"fitting + scoring {name}", total=int(final.customers.size)) if bar else None
        base = name.removesuffix(NEW_SUFFIX)
        reuse = base != name and base in fitted and chosen[base] == chosen[name]
        factory = _reused(fitted[base]) if reuse else _keeping(registry[name](chosen[name]), name, shared, fitted)
        metrics = evaluate_model(
            factory,
            final,
            ks=ks,
            on_batch=(lambda n, _task=task: bar.advance(_task, n)) if bar and task is not None else None,
        )
        results[name] = {key: _clean(value) for key, value in metrics.items()}
        if reuse:
            results[name]["fit_seconds"] = results[base]["fit_seconds"]
            results[name]["fit_shared_with"] = base  # type: ignore[assignment]
        if chosen[name]:
            results[name]["params"] = chosen[name]  # type: ignore[assignment]

    return {
        "protocol": protocol,
        "data": {"final": _clean_dict(final.stats), "tuning": _clean_dict(plan.tuning.stats)},
        "models": results,
        "tuning": tuning_report,
        "ks": list(ks),
        "conventions": METRIC_CONVENTIONS,
        "explore": explore_summary(results),
    }


def explore_summary(results: Mapping[str, Mapping[str, Any]], k: int = 10) -> dict[str, Any]:
    """Return the best explore recall@k (items new to the customer) against popularity's and popularity:new's.

    ``best``: the model with the highest ``explore_recall@k`` other than the popularity lists; the ratios are
    ``None`` when a reference is missing or zero.
    """
    key = f"explore_recall@{k}"
    scores = {m: v.get(key) for m, v in results.items() if isinstance(v.get(key), float)}
    candidates = {m: v for m, v in scores.items() if m.removesuffix(NEW_SUFFIX) != "popularity"}
    if not candidates:
        return {}
    best = max(candidates, key=lambda m: candidates[m])
    out: dict[str, Any] = {"best": best, key: candidates[best]}
    for reference in ("popularity", "popularity" + NEW_SUFFIX):
        ref = scores.get(reference)
        out[f"vs_{reference.replace(NEW_SUFFIX, '_new')}"] = round(candidates[best] / ref, 3) if ref else None
    return out


def _reused(model: Any) -> ModelFactory:
    """A factory that serves the new-items-only list of an already fitted model."""
    return lambda _data: _NewItemsOnly(model)


def _keeping(factory: ModelFactory, name: str, shared: set[str], fitted: dict[str, Any]) -> ModelFactory:
    """``factory``, keeping the model it fits in ``fitted[name]`` when a ``:new`` variant will ask it too."""
    if name not in shared:
        return factory

    def keep(data: EvalData) -> Any:
        fitted[name] = factory(data)
        return fitted[name]

    keep.prepare_inputs = getattr(factory, "prepare_inputs", None)  # type: ignore[attr-defined]
    return keep


def _tune_hybrid(
    build: Builder, chosen: Mapping[str, dict[str, Any]], tuning: EvalData, *, tuned: set[str], metric: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the hybrid's parameters with its blend tuned on validation, and a report.

    Components reuse the parameters tuned for them (the explore model's, buy-again's half-life); the blend grid
    runs on one hybrid fitted on the tuning train part (``recsys.models.tune_blend``: no refit per trial).
    """
    params = dict(chosen.get("hybrid", {}))
    explore = params.get("explore") or _default_param("hybrid", "explore")
    if explore in tuned and "explore_params" not in params:
        # inside the hybrid the explore model sees the hybrid's matrix (buy-again's half-life): a half-life tuned
        # for it alone would not apply, so it is not recorded as if it did
        params["explore_params"] = {k: v for k, v in chosen[explore].items() if k != "half_life_days"}
    if "buy_again" in tuned and "half_life_days" not in params:
        params["half_life_days"] = chosen["buy_again"].get("half_life_days")
    params = {k: v for k, v in params.items() if v is not None}
    model = build(params)(tuning)
    from recsys.models import HybridRecommender, tune_blend

    if not isinstance(model, HybridRecommender):
        return params, {"best_params": {}, "note": "model has no blend to tune"}

    k = int(metric.rsplit("@", 1)[1]) if metric.startswith("ndcg@") else 10
    trials = tune_blend(model, tuning.customers, tuning.truth, k=k)
    best = {"repeat_weight": trials[0].repeat_weight, "repeat_slope": trials[0].repeat_slope}
    return {**params, **best}, {"best_params": best, f"best_ndcg@{k}": trials[0].score, "trials": len(trials)}


def _default_param(model: str, name: str) -> Any:
    """The constructor default of one parameter of a ``recsys.models`` model (``None`` if unknown)."""
    cls = model_classes().get(model)
    return getattr(cls(), name, None) if cls is not None else None


class _stage:
    """A spinner task on ``bar`` (or nothing) around one step."""

    def __init__(self, bar: Progress | None, description: str) -> None:
        self.bar, self.description = bar, description

    def __enter__(self) -> None:
        self.task = self.bar.add_task(self.description, total=1) if self.bar else None
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=1)


def _clean(value: float) -> float | None:
    """JSON has no NaN: a metric that is undefined (no customer to average over) becomes ``null``."""
    return None if value != value else round(float(value), 6)


def _clean_dict(stats: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (int(v) if hasattr(v, "__int__") and not isinstance(v, (str, float)) else v) for k, v in stats.items()}
