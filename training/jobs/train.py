"""The train job: validated transactions → fitted recommenders → the train files of an artifact directory.

Writes (see docs/CONTRACTS.md): ``recommendations.parquet`` (the primary model's top-k per customer with source
and reason; the primary is the learned hybrid ``hybrid_ltr`` unless told otherwise), ``similar_items.parquet``,
``fallbacks.parquet``, ``items.parquet``, ``recommender/<model>.{npz,json}`` and ``train_manifest.json``. The
hybrid's blend is tuned on each customer's last order before the final fit on everything (this is production
training: there is no test split here; ``centric evaluate`` measures quality).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.clock import utcnow
from recsys.columns import Columns
from recsys.data.catalog import UNCATEGORISED
from recsys.exceptions import DataError
from recsys.implicit_feedback import Feedback, FeedbackWeights, before_holdout, feedback_matrices, off_summary
from recsys.matrix import build_matrix
from recsys.models import (
    MODELS,
    HybridRecommender,
    ItemFilter,
    Recommender,
    make_model,
    repeat_categories,
    repeat_category_items,
    tune_blend,
)
from recsys.models.external import similar_items_frame
from training.jobs.score import SHARDS_DIR, reasons_in_chunks
from training.jobs.score_engine import ENGINES, score_all
from training.jobs.train_outputs import fallback_lists, items_table

DEFAULT_MODELS: tuple[str, ...] = ("buy_again", "als", "hybrid", "popularity", "trending", "popular_in_category")
LINEAR_HYBRID = "hybrid"  # always fitted: its buy-again and explore parts are reused as models of their own
PRIMARY_MODELS: tuple[str, ...] = ("hybrid", "hybrid_ltr")  # which model writes recommendations.parquet
AUTO = "auto"  # choose the primary among PRIMARY_MODELS on validation (each customer's last order held out)
PRIMARY_CHOICES: tuple[str, ...] = (AUTO, *PRIMARY_MODELS)
SIMILAR_MODELS: tuple[str, ...] = (
    "als",
    "item_knn_bm25",
    "item_knn_cosine",
    "bpr",
)  # first fitted one writes similar_items
TRENDING_HALF_LIFE_DAYS = 14.0
# Customers the blend is tuned on, at most (a seeded sample beyond): NDCG@10 over 100k customers has a standard
# error near 0.001, far below the gaps between grid points, and scoring all of 1M customers twice (tuning, then
# serving) would double the cost of the largest step of `centric train`.
TUNE_MAX_CUSTOMERS = 100_000

Notify = Callable[[str, int, int], None]
_SPLIT_COLUMNS = (Columns.customer_id, Columns.item_id, Columns.timestamp, Columns.order_id, Columns.quantity)


def _noop(_stage: str, _done: int, _total: int) -> None:
    return None


def run_train(
    result: Any,
    out_dir: Path,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    k: int = 20,
    half_life_days: float = 120.0,
    tune: bool = True,
    similar_k: int = 20,
    similar_min_buyers: int = 10,
    similar_candidate_min_buyers: int = 20,
    exclude: Sequence[str] = (),
    explore: str = "user_knn",
    primary: str = AUTO,
    on_progress: Notify | None = None,
    engine: str = "local",
    workers: int = 2,
    scheduler: str | None = None,
    feedback_rows: pl.DataFrame | None = None,
    feedback_weights: FeedbackWeights | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Fit ``models`` on ``result.transactions`` and write the train files into ``out_dir``; return a summary dict.

        ``result`` is a :class:`recsys.data.LoadResult` (``transactions`` and optional ``catalog``). The hybrid is
        always fitted (it writes ``recommendations.parquet``). ``half_life_days``: recency half-life of buy-again;
        ``tune``: tune the hybrid blend on each customer's last order first; ``similar_min_buyers`` /
        ``similar_candidate_min_buyers``: items with fewer buyers get no similar-items list / are never suggested as
        similar; ``exclude``: item ids never to recommend; ``explore``: the hybrid's source of new items (``user_knn``
    compares every customer with every other one — use ``als`` beyond about a million customers); ``primary``: the
        model whose top-k is written to ``recommendations.parquet`` — ``auto`` (default: the linear hybrid and the
        learned ranker are both fitted on every order but each customer's last one and the better NDCG@10 on those
        last orders is served; the choice and both scores are recorded as ``primary_choice`` in the manifest),
        ``hybrid_ltr`` (the learned ranker) or ``hybrid`` (the tuned linear blend, the fastest); ``engine``: where
        every customer is scored (``local``; ``dask`` over ``workers`` local processes or the Dask ``scheduler``
        address; ``shards``: left to ``centric score --shard i/n``; see ``training.jobs.score_engine``);
        ``feedback_rows`` / ``feedback_weights``: views and clicks (``recsys.events.history.implicit_events`` rows) and
        their weights, added to what the collaborative models learn from (``recsys.implicit_feedback``; off when the
        weights are 0 or absent; the validation fits get only each customer's rows from before the day of their
        held-out order).
        ``threads``: batches of customers scored at once in this process, for the blend tuning and the ``local``
        engine (``recsys.models.parallel``; the outputs are the same for any number).
        Raises ``DataError`` when there is nothing to train on and ``ValueError`` for an unknown model name.
    """
    if primary not in PRIMARY_CHOICES:
        raise ValueError(f"unknown primary model {primary!r}; choose from {', '.join(PRIMARY_CHOICES)}")
    if engine not in ENGINES:
        raise ValueError(f"unknown scoring engine {engine!r}; choose from {', '.join(ENGINES)}")
    notify = on_progress or _noop
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    transactions: pl.DataFrame = result.transactions
    if transactions.is_empty():
        raise DataError("no purchases left to train on after validation; check the rejects file")
    timings: dict[str, float] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    now: datetime = transactions.get_column(Columns.timestamp).max()  # type: ignore[assignment]

    started = time.perf_counter()
    counts = build_matrix(transactions, weighting="count")
    recent = _decayed(transactions, counts, half_life_days, now)
    weights = feedback_weights or FeedbackWeights()
    rows = feedback_rows if weights.enabled and feedback_rows is not None else None
    feedback = feedback_matrices(rows, counts, weights, half_life_days=half_life_days, now=now)
    catalog = result.catalog
    categories = repeat_categories(transactions, _categorised(catalog, counts.items))
    items = items_table(catalog, transactions, categories)
    item_filter = ItemFilter.from_catalog(
        counts.items, items, repeat_items=repeat_category_items(items, categories), exclude=exclude
    )

    # The hybrid first: its fitted parts are reused as buy_again / als instead of being fitted twice.
    timings["matrices_and_items"] = time.perf_counter() - started
    fitted: dict[str, Recommender] = {}
    blend: dict[str, Any] = {}
    choice: dict[str, Any] = {"mode": primary}
    if tune or primary == AUTO:
        started = time.perf_counter()
        validation, validation_feedback = _validation_split(transactions, half_life_days, rows, weights)
        blend, hybrid = _tune_hybrid(validation, half_life_days, explore, tune, validation_feedback, threads)
        timings["tune_hybrid"] = time.perf_counter() - started
        if primary == AUTO:
            notify("choose the primary model on validation", 0, 1)
            started = time.perf_counter()
            choice = _choose_primary(validation, hybrid, items)
            timings["choose_primary"] = time.perf_counter() - started
        del validation, hybrid  # the held-out split's lines and models: gigabytes at 1M customers, not needed again
    primary = choice.get("chosen", primary if primary != AUTO else LINEAR_HYBRID)
    wanted = list(dict.fromkeys([LINEAR_HYBRID, primary, *models]))
    for done, name in enumerate(wanted):
        notify(f"fit {name}", done, len(wanted))
        started = time.perf_counter()
        part = {**blend, "explore": explore}
        fitted[name] = _fit_one(name, counts, recent, transactions, now, items, fitted, half_life_days, part, feedback)
        fitted[name].item_filter = item_filter
        timings[f"fit_{name}"] = time.perf_counter() - started
    notify("fit models", len(wanted), len(wanted))

    served = fitted[primary]
    started = time.perf_counter()
    scored = score_all(
        served,
        k,
        engine=engine,
        workers=workers,
        scheduler=scheduler,
        on_progress=lambda d, t: notify("score", d, t),
        threads=threads,
    )
    timings["recommend_all"] = time.perf_counter() - started
    notify("recommend", 1, 1)

    started = time.perf_counter()
    buyers = np.diff(counts.matrix.tocsc().indptr)
    query = np.flatnonzero(buyers >= similar_min_buyers)
    # Rarely bought items are neither asked about nor suggested: their factors are mostly noise, and limiting the
    # candidates keeps this step to seconds on a catalog of 100k items.
    suggest = np.flatnonzero(buyers >= max(similar_candidate_min_buyers, similar_min_buyers))
    similar_model = next((fitted[m] for m in SIMILAR_MODELS if m in fitted), None)
    if similar_model is None:  # nothing chosen can say which items are alike: fit the default one for this table
        similar_model = make_model(SIMILAR_MODELS[0]).fit(counts, recent=recent, feedback=feedback)
    sim_ids, sim_scores = similar_model.similar_items(query, similar_k, candidates=suggest if suggest.size else query)
    similar = similar_items_frame(query, sim_ids, sim_scores, counts.items)
    timings["similar_items"] = time.perf_counter() - started
    started = time.perf_counter()
    # engine "shards": `centric score --shard i/n` writes the recommendations (with these same reasons) later
    recs = reasons_in_chunks(scored, transactions, now, similar, items) if scored is not None else None
    popularity = np.diff(counts.matrix.tocsc().indptr).astype(np.float32)
    trending = fitted["trending"].item_scores_ if "trending" in fitted else None  # type: ignore[attr-defined]
    fallbacks = fallback_lists(popularity, trending, counts.items, items, item_filter, k)
    timings["reasons_and_fallbacks"] = time.perf_counter() - started
    started = time.perf_counter()
    # shards of an earlier train score an earlier model: gone, so that publish never mixes them with this one
    shutil.rmtree(out_dir / SHARDS_DIR, ignore_errors=True)
    if recs is not None:
        recs.write_parquet(out_dir / "recommendations.parquet")
    else:
        (out_dir / "recommendations.parquet").unlink(missing_ok=True)  # never an older train's, beside new shards
    similar.write_parquet(out_dir / "similar_items.parquet")
    fallbacks.write_parquet(out_dir / "fallbacks.parquet")
    items.write_parquet(out_dir / "items.parquet")
    model_dir = out_dir / "recommender"
    for name in dict.fromkeys([*models, LINEAR_HYBRID, primary]):  # the linear hybrid too: its parts serve fold-in
        fitted[name].save(model_dir)

    timings["write"] = time.perf_counter() - started
    manifest = {
        "trained_at": utcnow().isoformat(timespec="seconds"),
        "data_fingerprint": served.fingerprint_,
        "data_until": now.isoformat(),
        "models": {name: fitted[name].get_params() for name in dict.fromkeys([*models, LINEAR_HYBRID, primary])},
        "primary_model": primary,
        "primary_choice": choice,
        "blend_tuning": blend,
        "implicit_feedback": feedback.summary if feedback is not None else off_summary(),
        "counts": {
            "customers": len(counts.customers),
            "items": len(counts.items),
            "pairs": counts.nnz,
            "lines": transactions.height,
            "recommendations": recs.height if recs is not None else 0,
            "similar_items": similar.height,
            "fallback_rows": fallbacks.height,
            "repeat_categories": int(categories.get_column("repeat_category").sum()),
            "categories": categories.height,
        },
        "sources": dict(recs.group_by(Columns.source).len().iter_rows()) if recs is not None else {},
        "scoring": {"k": k, "engine": engine},
        "seconds": {key: round(value, 2) for key, value in timings.items()},
    }
    (out_dir / "train_manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
    keys = ("primary_model", "primary_choice", "counts", "sources", "seconds", "blend_tuning", "implicit_feedback")
    return {key: manifest[key] for key in keys} | {
        "models": list(manifest["models"]),
        "out_dir": str(out_dir),
    }


def _decayed(transactions: pl.DataFrame, counts: Any, half_life_days: float, now: datetime) -> Any:
    """The purchase matrix weighted by recency (half-life ``half_life_days``), on ``counts``' customers and items."""
    return build_matrix(
        transactions,
        weighting="decay",
        half_life_days=half_life_days,
        now=now,
        customers=counts.customers,
        items=counts.items,
    )


def _categorised(catalog: pl.DataFrame | None, items: Any) -> pl.DataFrame:
    """The catalog's item → category, or every item in one ``uncategorised`` category when there is no catalog."""
    if catalog is not None and Columns.category in catalog.columns:
        return catalog.select(Columns.item_id, pl.col(Columns.category).fill_null(UNCATEGORISED))
    return pl.DataFrame({Columns.item_id: list(items.external_ids), Columns.category: UNCATEGORISED})


def _fit_one(
    name: str,
    counts: Any,
    recent: Any,
    transactions: pl.DataFrame,
    now: datetime,
    items: pl.DataFrame,
    fitted: dict[str, Recommender],
    half_life_days: float,
    blend: dict[str, Any],
    feedback: Feedback | None = None,
) -> Recommender:
    """Fit one model; the hybrid's fitted parts are reused as ``buy_again`` / ``als`` (same data, same params).
    ``feedback`` (views and clicks) goes to every fit; only the collaborative models learn from it."""
    if name == LINEAR_HYBRID:
        params = {k: blend[k] for k in ("repeat_weight", "repeat_slope", "explore") if k in blend}
        return make_model(name, half_life_days=half_life_days, **params).fit(counts, recent=recent, feedback=feedback)
    hybrid = fitted.get(LINEAR_HYBRID)
    if isinstance(hybrid, HybridRecommender):
        if name == "buy_again":
            return _part(hybrid.repeat_, hybrid)
        if name == hybrid.explore and not hybrid.explore_params:
            return _part(hybrid.explore_, hybrid)
    if name == "buy_again":
        return make_model(name, half_life_days=half_life_days).fit(counts, recent=recent)
    if name == "trending":
        short = _decayed(transactions, counts, TRENDING_HALF_LIFE_DAYS, now)
        return make_model(name, half_life_days=TRENDING_HALF_LIFE_DAYS).fit(counts, recent=short)
    model = make_model(name)
    if name in ("popular_in_category", "hybrid_ltr"):
        model.item_categories = category_codes(items, counts.items)  # type: ignore[attr-defined]
    return model.fit(counts, recent=recent, transactions=transactions, feedback=feedback)


def category_codes(items: pl.DataFrame, ids: Any) -> np.ndarray:
    """Return an int category code per item of the id map ``ids`` (``-1`` = not in ``items``), from ``items.parquet``'s
    table."""
    codes = items.select(Columns.item_id, pl.col(Columns.category).rank("dense").cast(pl.Int64).alias("code"))
    order = pl.DataFrame({Columns.item_id: list(ids.external_ids)}).join(
        codes, on=Columns.item_id, how="left", maintain_order="left"
    )
    return order.get_column("code").fill_null(-1).to_numpy()


def _part(model: Recommender, hybrid: HybridRecommender) -> Recommender:
    """A hybrid component standing on its own (it shares the hybrid's data, fingerprint and id maps)."""
    for attr in ("customers_", "items_", "fingerprint_", "trained_at_"):
        setattr(model, attr, getattr(hybrid, attr))
    return model


def _validation_split(
    transactions: pl.DataFrame,
    half_life_days: float,
    feedback_rows: pl.DataFrame | None = None,
    weights: FeedbackWeights | None = None,
) -> tuple[Any, Feedback | None]:
    """Each customer's last order held out (train on the orders before it), as ``EvalData``, and the views and
    clicks of the train part (each customer's from before their held-out order's day; ``None`` when off); a ``str``
    saying why there is no split (no customer with two orders, or no last order with an item seen before)."""
    from recsys.evaluation.runner import prepare
    from recsys.splits import last_order_split

    # Only what the split, the matrices and the learned hybrid read: the split copies the lines it keeps.
    wanted = [c for c in _SPLIT_COLUMNS if c in transactions.columns]
    try:
        split = last_order_split(transactions.select(wanted))
    except DataError as exc:
        return str(exc), None
    data = prepare(split, recent_half_life_days=half_life_days)
    if data.customers.size == 0:
        return "no customer has a last order with known items", None
    if feedback_rows is None or weights is None:
        return data, None
    rows = before_holdout(feedback_rows, split.test)
    return data, feedback_matrices(rows, data.train, weights, half_life_days=half_life_days, now=data.now)


def _tune_hybrid(
    validation: Any, half_life_days: float, explore: str, tune: bool, feedback: Feedback | None = None, threads: int = 1
) -> tuple[dict[str, Any], Any]:
    """Fit the linear hybrid on the validation split's train part (with its ``feedback``) and (``tune``) tune its
    blend on the held-out orders; return the report and the fitted hybrid (``None`` without a validation split)."""
    if isinstance(validation, str):
        return {"skipped": validation}, None
    model = HybridRecommender(half_life_days=half_life_days, explore=explore).fit(
        validation.train, recent=validation.recent, feedback=feedback
    )
    if not tune:
        return {}, model
    customers = validation.customers
    if customers.size > TUNE_MAX_CUSTOMERS:  # a seeded sample: the grid's NDCG@10 is as sure, the scoring far cheaper
        customers = np.sort(np.random.default_rng(0).choice(customers, TUNE_MAX_CUSTOMERS, replace=False))
    trials = tune_blend(model, customers, validation.truth, threads=threads)
    best = trials[0]
    return {
        "repeat_weight": best.repeat_weight,
        "repeat_slope": best.repeat_slope,
        "validation_ndcg@10": round(best.score, 4),
        "validation_customers": int(customers.size),
        "protocol": "each customer's last order held out",
    }, model


def _choose_primary(validation: Any, hybrid: HybridRecommender | None, items: pl.DataFrame) -> dict[str, Any]:
    """Score the (tuned) linear hybrid and a learned hybrid fitted on the same validation train part on each
    customer's last order; return the report with ``chosen`` = the better NDCG@10 (the linear one on a tie: it is
    the cheaper to fit). Without a validation split the linear hybrid is chosen and the report says why."""
    if isinstance(validation, str) or hybrid is None:
        reason = validation if isinstance(validation, str) else "no validation split"
        return {"mode": AUTO, "chosen": LINEAR_HYBRID, "skipped": reason}
    from recsys.evaluation.metrics import ranking_metrics
    from recsys.evaluation.runner import recommend_all

    rows = validation.customers
    learned = make_model("hybrid_ltr")
    learned.item_categories = category_codes(items, validation.train.items)  # type: ignore[attr-defined]
    learned.fit(validation.train, transactions=validation.transactions)
    scores = {
        name: round(ranking_metrics(recommend_all(model, rows, 10), validation.truth[rows], (10,))["ndcg@10"], 4)
        for name, model in ((LINEAR_HYBRID, hybrid), ("hybrid_ltr", learned))
    }
    chosen = "hybrid_ltr" if scores["hybrid_ltr"] > scores[LINEAR_HYBRID] else LINEAR_HYBRID
    return {
        "mode": AUTO,
        "chosen": chosen,
        "validation_ndcg@10": scores,
        "validation_customers": int(rows.size),
        "protocol": "each customer's last order held out; both models fitted on the orders before it",
    }
