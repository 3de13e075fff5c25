"""The learned hybrid: repeat and explore candidates re-ranked by a LightGBM LambdaRank model of basket history.

Where :class:`~recsys.models.hybrid.HybridRecommender` blends two scores with two tuned weights, this model
learns the blend from the customers' own history, the way next-basket systems do (a gradient-boosted ranker over
customer × item features, as in the Instacart-style rankers):

- **Candidates** per customer: the ``candidates`` items they bought before with the best buy-again score
  (90-day decayed count × the item's repeat rate ** 0.5, the linear hybrid's repeat list) and the
  ``explore_candidates`` items most bought in the 28 days before the day of their last basket that they never
  bought.
- **Features** (:data:`FEATURES`), all as of a cutoff: how often and how recently the customer bought the item
  (basket counts, order- and day-decayed sums, baskets and days since the last purchase, their own repurchase
  interval), what the item is for everyone (buyers, repeat rate, purchases per buyer, share of baskets, last 28
  days, its repurchase cycle: everyone's mean days between two purchases of it, and the candidate's position in
  that cycle — time-aware item weighting as a feature, +0.0018 validation NDCG@10), who the customer is (baskets,
  basket size, share of repeat lines) and how they buy the candidate's category (baskets, days since the last,
  repurchase interval and cycle position, the item's share of the category; from ``item_categories``, -1 without a
  catalog: +0.0046 validation NDCG@10 on The Complete Journey together with early stopping, benchmarks/README.md
  issue 19).
- **Boosting** stops when the NDCG@10 of a held-out tenth of the training customers has not improved for
  ``early_stopping_rounds`` rounds (``rounds`` is the most; 89 of 300 on The Complete Journey).
- **Honest time**: item features and trending candidates are those of the customer's own reference day (the day of
  their last basket before the cutoff), from everyone's purchases before that day — never of the newest date in
  the data, which lies in the future of most training targets and of households that stopped shopping early.
- **Training without leakage**: the ranker is trained on the fitted lines only. For ``r = 1 … target_baskets``
  the customer's ``r``-th last basket is the target and the customer's features are computed from their baskets
  before it (item features from everyone's purchases before the day of the basket before the target);
  the labels are "this candidate was in the target basket" (with ``horizon_days``: in any basket that starts
  within that many days of the target basket — "the next 30 days" rather than "the next basket"). Scores served are
  the ranker's output on features computed from all fitted baskets. So a model fitted on an evaluation split's
  train part never sees its validation or test baskets.

Fitting needs the purchase lines, not only the matrix: ``fit(matrix, transactions=lines)`` with ``customer_id``,
``item_id``, ``timestamp`` and, when present, ``order_id`` and ``quantity`` (without ``order_id``, lines with one
timestamp are one basket, as in :func:`recsys.splits.next_basket_split`). Without any customer with two
baskets there is nothing to learn from and the scores are the candidates' buy-again scores.

Scale: training uses at most ``max_training_customers`` customers (a seeded sample; features still use everyone's
history); scoring builds the features of every customer's ~120 candidates ``SERVE_CUSTOMERS`` customers at a time
(42 float32 each, about 20 KB per customer before polars' intermediates). At 1M customers the fit, scoring included,
took 303 s and train peaked at 8.4 GB (benchmarks/README.md, issue 18).

The ranked candidates are stored as a sparse customers × items matrix, so ``recommend`` is a sparse look-up and
filters (stock, exclusions, bought items) apply as for every model. The booster is saved with the model (as
LightGBM's text format in a ``uint8`` array) for :meth:`LearnedHybridRecommender.feature_importance`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.models.artifacts import csr_arrays, csr_from_arrays
from recsys.models.base import Recommender, dense_rows
from recsys.models.basket_features import (
    BASKETS_AGO,
    CUSTOMER,
    FEATURES,
    ITEM,
    LABEL,
    basket_lines,
    candidate_features,
    item_context,
    training_frame,
)

SERVE_CUSTOMERS = 100_000  # customers whose candidates' features are built at once when scoring everyone
PREDICT_ROWS = 1 << 20  # candidates scored per LightGBM predict call (bounds the features' numpy copy: ~170 MB)
_MIN_EARLY_STOPPING_CUSTOMERS = 200


class LearnedHybridRecommender(Recommender):
    """Buy-again and trending candidates re-ranked by a LambdaRank booster learned from basket history (module
    docstring)."""

    name: ClassVar[str] = "hybrid_ltr"
    needs_transactions: ClassVar[bool] = True
    # An int category code per item (-1 = none), set before fit as for popular_in_category: the customer × category
    # features (how often and how lately the customer buys the candidate's category). Without it they are -1.
    item_categories: np.ndarray | None = None

    def __init__(
        self,
        target_baskets: int = 10,
        candidates: int = 100,
        explore_candidates: int = 20,
        rounds: int = 300,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_data_in_leaf: int = 100,
        seed: int = 0,
        horizon_days: float | None = None,
        max_training_customers: int = 20_000,
        early_stopping_rounds: int | None = 20,
        training_candidates: int | None = None,
    ) -> None:
        for name, value, low in (
            ("target_baskets", target_baskets, 1),
            ("candidates", candidates, 1),
            ("explore_candidates", explore_candidates, 0),
            ("rounds", rounds, 1),
            ("num_leaves", num_leaves, 2),
            ("min_data_in_leaf", min_data_in_leaf, 1),
            ("max_training_customers", max_training_customers, 1),
            ("early_stopping_rounds", early_stopping_rounds or 1, 1),
            ("training_candidates", training_candidates or 1, 1),
        ):
            if int(value) != value or value < low:
                raise ValueError(f"hybrid_ltr: {name} must be an integer >= {low}, got {value!r}")
        if not learning_rate > 0 or (horizon_days is not None and not horizon_days > 0):
            raise ValueError(
                f"hybrid_ltr: learning_rate and horizon_days must be > 0, got {learning_rate!r} and {horizon_days!r}"
            )
        self.target_baskets = target_baskets
        self.candidates = candidates
        self.explore_candidates = explore_candidates
        self.rounds = rounds
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.seed = seed
        self.horizon_days = horizon_days
        self.max_training_customers = max_training_customers
        self.early_stopping_rounds = early_stopping_rounds
        self.training_candidates = training_candidates

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        if transactions is None:  # fit() refuses a model that needs_transactions without them
            raise ValueError("hybrid_ltr learns from basket history: fit it with transactions=<the purchase lines>")
        if self.item_categories is not None and len(self.item_categories) != counts.shape[1]:
            raise ValueError(
                f"hybrid_ltr: item_categories has {len(self.item_categories)} entries, the matrix has "
                f"{counts.shape[1]} items"
            )
        lines = basket_lines(transactions, self.customers_, self.items_)
        context = item_context(lines, self.item_categories, trending=self.explore_candidates)
        train = training_frame(
            lines,
            self.target_baskets,
            min(self.training_candidates or self.candidates, self.candidates),
            self.explore_candidates,
            self.horizon_days,
            self._training_customers(lines),
            context,
        )
        self.boosting_rounds_ = 0
        self.booster_text_ = self._train(train) if train.height else ""
        cu, it, buy_again, scores = self._serve_scores(lines, context)
        spread = float(scores.max() - scores.min()) if scores.size else 0.0
        if self.booster_text_ and spread == 0.0:
            # Too little data for a single split (every prediction alike): rank by buy-again, not by item index.
            self.booster_text_, scores, spread = "", buy_again, float(buy_again.max() - buy_again.min())
        # Ties between the ranker's scores go to the better buy-again score (then, as everywhere, the lower item id).
        scores = np.asarray(scores, np.float64) + 1e-6 * max(spread, 1e-6) * buy_again
        # Shifted to be > 0 so that no candidate's score is a zero that a sparse matrix would drop.
        values = (np.asarray(scores, np.float64) - (scores.min() if scores.size else 0.0) + 1e-3).astype(np.float32)
        self.scores_ = sp.csr_matrix((values, (cu, it)), shape=counts.shape, dtype=np.float32)
        self.training_rows_ = int(train.height)

    def _serve_scores(self, lines: pl.DataFrame, context: Any) -> tuple[np.ndarray, ...]:
        """Every customer's candidates (``_cu``, ``_it``), their buy-again score and the ranker's, ``SERVE_CUSTOMERS``
        customers at a time: the features of one range at once (32 float32 per candidate and polars' intermediates,
        gigabytes at 1M customers), never all. A candidate's features depend on its own customer's history and the
        item context only, so the rows are those of one pass."""
        everyone = lines.get_column(CUSTOMER).unique().sort()
        parts: list[tuple[np.ndarray, ...]] = []
        for start in range(0, max(everyone.len(), 1), SERVE_CUSTOMERS):
            chunk = everyone.slice(start, SERVE_CUSTOMERS) if everyone.len() > SERVE_CUSTOMERS else None
            serve = candidate_features(
                lines, 0, self.candidates, self.explore_candidates, customers=chunk, context=context
            )
            buy_again = serve.get_column("buy_again_relative").to_numpy().astype(np.float64)  # -1 for new items
            scores = self._predict(serve) if self.booster_text_ else buy_again
            parts.append((serve.get_column(CUSTOMER).to_numpy(), serve.get_column(ITEM).to_numpy(), buy_again, scores))
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))

    def _training_customers(self, lines: pl.DataFrame) -> pl.Series | None:
        """All customers with two baskets or more, or a seeded sample of ``max_training_customers`` of them.

        The training frame has about ``target_baskets × (candidates + explore_candidates)`` rows per customer, so
        the sample bounds the fit's memory and time on a large customer base; scoring still covers everyone.
        """
        eligible = lines.filter(pl.col(BASKETS_AGO) >= 2).get_column(CUSTOMER).unique().sort()
        if eligible.len() <= self.max_training_customers:
            return None
        return eligible.sample(self.max_training_customers, seed=self.seed).sort()

    def _train(self, train: pl.DataFrame) -> str:
        """Return the booster (LightGBM's text format) trained on ``train``; with ``early_stopping_rounds``, a
        seeded tenth of the training customers (all their target baskets) is held out and boosting stops when their
        NDCG@10 has not improved for that many rounds (``rounds`` is then the most)."""
        import lightgbm as lgb

        params = {
            "objective": "lambdarank",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "feature_fraction": 0.8,
            "lambdarank_truncation_level": 20,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        held = self._early_stopping_customers(train)
        fit_part = train if held is None else train.filter(~pl.col(CUSTOMER).is_in(held.implode()))
        data = self._dataset(fit_part)
        if held is None:
            self.boosting_rounds_ = self.rounds
            return lgb.train(params, data, num_boost_round=self.rounds).model_to_string()
        valid = self._dataset(train.filter(pl.col(CUSTOMER).is_in(held.implode())), reference=data)
        booster = lgb.train(
            {**params, "metric": "ndcg", "eval_at": [10]},
            data,
            num_boost_round=self.rounds,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(int(self.early_stopping_rounds or 1), verbose=False)],
        )
        self.boosting_rounds_ = int(booster.best_iteration or self.rounds)
        return booster.model_to_string(num_iteration=self.boosting_rounds_)

    def _early_stopping_customers(self, train: pl.DataFrame) -> pl.Series | None:
        """The customers held out to stop boosting early (a seeded tenth), or ``None`` (no early stopping, or fewer
        than 200 customers to learn from: a held-out score of a handful of customers is too coarse to stop on)."""
        customers = train.get_column(CUSTOMER).unique().sort()
        if not self.early_stopping_rounds or customers.len() < _MIN_EARLY_STOPPING_CUSTOMERS:
            return None
        return customers.sample(fraction=0.1, seed=self.seed).sort()

    @staticmethod
    def _dataset(frame: pl.DataFrame, reference: Any = None) -> Any:
        import lightgbm as lgb

        sizes = frame.group_by("_r", CUSTOMER, maintain_order=True).len().get_column("len").to_numpy()
        return lgb.Dataset(
            frame.select(FEATURES).to_numpy().astype(np.float32),
            frame.get_column(LABEL).to_numpy(),
            group=sizes,
            feature_name=[f.replace(".", "_") for f in FEATURES],
            free_raw_data=True,
            reference=reference,
        )

    def _predict(self, frame: pl.DataFrame) -> np.ndarray:
        if frame.is_empty():
            return np.empty(0, np.float64)
        # In slices: one float32 copy of every candidate's features at once is ~5 GB at 1M customers (30M candidates
        # × 42 features); a slice costs PREDICT_ROWS rows. Each row's prediction depends on that row only.
        booster = self._booster()
        out = np.empty(frame.height, np.float64)
        for start in range(0, frame.height, PREDICT_ROWS):
            part = frame.slice(start, PREDICT_ROWS).select(FEATURES).to_numpy().astype(np.float32)
            out[start : start + part.shape[0]] = booster.predict(part)
        return out

    def _booster(self) -> Any:
        import lightgbm as lgb

        if not self.booster_text_:
            raise ValueError("this model has no ranker: no customer had two baskets, so it ranks by buy-again")
        return lgb.Booster(model_str=self.booster_text_)

    def feature_importance(self) -> dict[str, float]:
        """Return ``{feature: total gain}`` of the fitted ranker, largest first."""
        self._check_fitted()
        booster = self._booster()
        gains = booster.feature_importance(importance_type="gain")
        # the booster's own names: a model saved before features were added keeps its own list
        by_name = {f.replace(".", "_"): f for f in FEATURES}
        names = [by_name.get(n, n) for n in booster.feature_name()]
        return dict(sorted(zip(names, map(float, gains), strict=True), key=lambda kv: -kv[1]))

    def _score(self, batch: np.ndarray) -> np.ndarray:
        return dense_rows(self.scores_, batch)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **csr_arrays("scores", self.scores_),
            "booster": np.frombuffer(self.booster_text_.encode(), np.uint8),
            "training_rows": np.array([self.training_rows_], np.int64),
            "boosting_rounds": np.array([self.boosting_rounds_], np.int64),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.scores_ = csr_from_arrays("scores", arrays)
        self.booster_text_ = np.asarray(arrays["booster"], np.uint8).tobytes().decode()
        self.training_rows_ = int(np.asarray(arrays["training_rows"])[0])
        # saved by models from 2026-12 on; earlier ones boosted `rounds` rounds
        rounds = arrays.get("boosting_rounds", np.array([self.rounds]))
        self.boosting_rounds_ = int(np.asarray(rounds)[0])
