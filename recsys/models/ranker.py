"""The learned hybrid: repeat and explore candidates re-ranked by a LightGBM LambdaRank model of basket history.

Where :class:`~recsys.models.hybrid.HybridRecommender` blends two scores with two tuned weights, this model
learns the blend from the customers' own history, the way next-basket systems do (a gradient-boosted ranker over
customer × item features, as in the Instacart-style rankers):

- **Candidates** per customer: the ``candidates`` items they bought before with the best buy-again score
  (90-day decayed count × the item's repeat rate ** 0.5, the linear hybrid's repeat list) and the
  ``explore_candidates`` most bought items of the last 28 days that they never bought.
- **Features** (:data:`FEATURES`), all as of a cutoff: how often and how recently the customer bought the item
  (basket counts, order- and day-decayed sums, baskets and days since the last purchase, their own repurchase
  interval), what the item is for everyone (buyers, repeat rate, purchases per buyer, last 28 days) and who the
  customer is (baskets, basket size, share of repeat lines).
- **Training without leakage**: the ranker is trained on the fitted lines only. For ``r = 1 … target_baskets``
  the customer's ``r``-th last basket is the target and the customer's features are computed from their baskets
  before it (item features use every customer's baskets before that customer's own ``r``-th last one: cutoffs are
  per customer, not a date, as in the usual next-basket rankers);
  the labels are "this candidate was in the target basket" (with ``horizon_days``: in any basket that starts
  within that many days of the target basket — "the next 30 days" rather than "the next basket"). Scores served are
  the ranker's output on features computed from all fitted baskets. So a model fitted on an evaluation split's
  train part never sees its validation or test baskets.

Fitting needs the purchase lines, not only the matrix: ``fit(matrix, transactions=lines)`` with ``customer_id``,
``item_id``, ``timestamp`` and, when present, ``order_id`` and ``quantity`` (without ``order_id``, lines with one
timestamp are one basket, as in :func:`recsys.splits.next_basket_split`). Without any customer with two
baskets there is nothing to learn from and the scores are the candidates' buy-again scores.

Scale: training uses at most ``max_training_customers`` customers (a seeded sample; features still use everyone's
history), but scoring builds the features of every customer's ~120 candidates at once (32 float32 each, about 15 KB
per customer before polars' intermediates). Measured only up to The Complete Journey's 2,469 households (fit about a
minute on 2 cores); for millions of customers use the linear hybrid until scoring is batched.

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

from recsys.columns import Columns
from recsys.models.artifacts import csr_arrays, csr_from_arrays
from recsys.models.base import Recommender, dense_rows

# Internal column names (prefixed so they never clash with a transaction column).
_CU, _IT, _T, _RL, _Q, _Y = "_cu", "_it", "_t", "_rl", "_q", "_y"
_DAY = 86_400.0
_TREND_DAYS = 28
_MISSING = -1.0  # feature value of "not defined" (e.g. a repurchase interval with one purchase); trees split on it

FEATURES: tuple[str, ...] = (
    # customer × item
    "baskets_with_item",  # how many of the customer's baskets held the item
    "baskets_since_last",  # 1 = in the customer's last basket
    "baskets_since_first",
    "days_since_last",  # days from the item's last purchase to the customer's last basket
    "days_since_first",
    "decay_days_30",  # sum over purchases of 0.5 ** (age / 30 days)
    "decay_days_90",
    "decay_days_365",
    "decay_baskets_0.8",  # sum over purchases of 0.8 ** (baskets ago)
    "decay_baskets_0.95",
    "in_last_3_baskets",
    "in_last_10_baskets",
    "quantity",
    "basket_share",  # baskets_with_item / the customer's baskets
    "share_since_first",  # baskets_with_item / baskets since the first purchase of the item
    "repurchase_days",  # the customer's mean days between purchases of the item (-1: bought once)
    "cycle_position",  # days_since_last / repurchase_days (-1: bought once)
    "buy_again",  # decay_days_90 × item_repeat_rate ** 0.5 (the repeat list's order)
    "buy_again_relative",  # buy_again / the customer's best buy_again
    "buy_again_rank",  # 1 = the customer's best
    "decay_days_90_relative",
    "is_new",  # 1 for explore candidates (never bought by the customer)
    # item
    "item_buyers",
    "item_repeat_rate",  # share of the item's buyers who bought it in two baskets or more
    "item_baskets_per_buyer",
    "item_basket_share",  # mean basket_share over the item's buyers
    "item_recent_lines",  # lines in the last 28 days of the data
    # customer
    "customer_baskets",
    "customer_items",
    "customer_basket_size",
    "customer_repeat_share",
    "customer_days_between_baskets",
)


def basket_lines(transactions: pl.DataFrame, customers: Any, items: Any) -> pl.DataFrame:
    """Return one row per (customer, basket, item) on internal indices, with ``_rl`` = baskets from the last (1 = last).

    ``customers`` / ``items`` are the model's :class:`~recsys.ids.IdMap`; lines of other ids are dropped.
    Raises ``ValueError`` naming a missing column.
    """
    missing = [c for c in (Columns.customer_id, Columns.item_id, Columns.timestamp) if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"the learned hybrid needs purchase lines with {', '.join(missing)}; got columns {transactions.columns}"
        )
    order_key = Columns.order_id if Columns.order_id in transactions.columns else Columns.timestamp
    quantity = pl.col(Columns.quantity).cast(pl.Float64) if Columns.quantity in transactions.columns else pl.lit(1.0)
    lines = transactions.select(
        pl.col(Columns.customer_id).cast(pl.String),
        pl.col(Columns.item_id).cast(pl.String),
        pl.col(Columns.timestamp).alias(_T),
        pl.col(order_key).cast(pl.String).alias("_order"),
        quantity.alias(_Q),
    )
    lines = customers.to_internal_frame(lines, Columns.customer_id, _CU)
    lines = items.to_internal_frame(lines, Columns.item_id, _IT).drop(Columns.customer_id, Columns.item_id)
    orders = (
        lines.group_by(_CU, "_order")
        .agg(pl.col(_T).min())
        .with_columns(
            pl.struct(_T, "_order").rank(method="ordinal", descending=True).over(_CU).cast(pl.Int32).alias(_RL)
        )
    )
    per_item = lines.group_by(_CU, "_order", _IT).agg(pl.col(_Q).sum())
    # A fixed row order: float sums over groups follow it, and the same data must give the same model.
    return per_item.join(orders, on=[_CU, "_order"]).select(_CU, _IT, _T, _RL, _Q).sort(_CU, _RL, _IT)


def candidate_features(
    lines: pl.DataFrame, cutoff: int, candidates: int, explore_candidates: int, customers: pl.Series | None = None
) -> pl.DataFrame:
    """Features of every candidate as of ``cutoff``: the history is the baskets with ``_rl > cutoff``.

    Returns ``_cu``, ``_it`` and :data:`FEATURES` (float32), one row per candidate; empty when no history is left.
    ``customers``: only these customers' candidates (item and population features still come from everyone).
    """
    h = lines.filter(pl.col(_RL) > cutoff).with_columns((pl.col(_RL) - cutoff).alias(_RL))
    if h.is_empty():
        return pl.DataFrame(schema={_CU: pl.Int32, _IT: pl.Int32, **{f: pl.Float32 for f in FEATURES}})
    cust = (
        h.group_by(_CU)
        .agg(
            pl.col(_RL).max().alias("customer_baskets"),
            pl.col(_T).max().alias("_t_last"),
            pl.col(_T).min().alias("_t_first"),
            pl.len().alias("_lines"),
            pl.col(_IT).n_unique().alias("customer_items"),
        )
        .with_columns(
            (pl.col("_lines") / pl.col("customer_baskets")).alias("customer_basket_size"),
            (1.0 - pl.col("customer_items") / pl.col("_lines")).alias("customer_repeat_share"),
            (
                (pl.col("_t_last") - pl.col("_t_first")).dt.total_seconds()
                / _DAY
                / pl.max_horizontal(pl.col("customer_baskets") - 1, 1)
            ).alias("customer_days_between_baskets"),
        )
    )
    age = (pl.col("_t_last") - pl.col(_T)).dt.total_seconds() / _DAY
    h = h.join(cust.select(_CU, "_t_last"), on=_CU).with_columns(age.alias("_age"))
    a, rl = pl.col("_age"), pl.col(_RL)
    pairs = h.group_by(_CU, _IT).agg(
        pl.len().alias("baskets_with_item"),
        rl.min().alias("baskets_since_last"),
        rl.max().alias("baskets_since_first"),
        a.min().alias("days_since_last"),
        a.max().alias("days_since_first"),
        (0.5 ** (a / 30.0)).sum().alias("decay_days_30"),
        (0.5 ** (a / 90.0)).sum().alias("decay_days_90"),
        (0.5 ** (a / 365.0)).sum().alias("decay_days_365"),
        (0.8 ** (rl - 1)).sum().alias("decay_baskets_0.8"),
        (0.95 ** (rl - 1)).sum().alias("decay_baskets_0.95"),
        (rl <= 3).sum().alias("in_last_3_baskets"),
        (rl <= 10).sum().alias("in_last_10_baskets"),
        pl.col(_Q).sum().alias("quantity"),
    )
    pairs = pairs.join(cust.select(_CU, "customer_baskets"), on=_CU).with_columns(
        (pl.col("baskets_with_item") / pl.col("customer_baskets")).alias("basket_share"),
        (pl.col("baskets_with_item") / pl.col("baskets_since_first")).alias("share_since_first"),
        pl.when(pl.col("baskets_with_item") > 1)
        .then((pl.col("days_since_first") - pl.col("days_since_last")) / (pl.col("baskets_with_item") - 1))
        .otherwise(None)
        .alias("repurchase_days"),
    )
    pairs = pairs.with_columns((pl.col("days_since_last") / pl.col("repurchase_days")).alias("cycle_position"))
    item = pairs.group_by(_IT).agg(
        pl.len().alias("item_buyers"),
        (pl.col("baskets_with_item") >= 2).mean().alias("item_repeat_rate"),
        pl.col("baskets_with_item").mean().alias("item_baskets_per_buyer"),
        pl.col("basket_share").mean().alias("item_basket_share"),
    )
    newest = h.get_column(_T).max()
    trend = (
        h.filter(pl.col(_T) > newest - pl.duration(days=_TREND_DAYS))
        .group_by(_IT)
        .agg(pl.len().alias("item_recent_lines"))
    )
    item = item.join(trend, on=_IT, how="left").with_columns(pl.col("item_recent_lines").fill_null(0))
    customer_cols = ["customer_items", "customer_basket_size", "customer_repeat_share", "customer_days_between_baskets"]
    if customers is not None:
        pairs = pairs.filter(pl.col(_CU).is_in(customers.implode()))
        cust = cust.filter(pl.col(_CU).is_in(customers.implode()))
    pairs = pairs.join(item, on=_IT, how="left").join(cust.select(_CU, *customer_cols), on=_CU, how="left")
    score = pl.col("decay_days_90") * pl.col("item_repeat_rate").sqrt()
    bought = pairs.select(_CU, _IT)  # every item each customer bought, before the cut to the best `candidates`
    pairs = (
        pairs.sort(_CU, _IT)  # group_by order is arbitrary; the ordinal rank below breaks ties by position
        .with_columns(score.alias("buy_again"))
        .with_columns(
            (pl.col("buy_again") / pl.col("buy_again").max().over(_CU)).alias("buy_again_relative"),
            pl.col("buy_again").rank(method="ordinal", descending=True).over(_CU).alias("buy_again_rank"),
            (pl.col("decay_days_90") / pl.col("decay_days_90").max().over(_CU)).alias("decay_days_90_relative"),
            pl.lit(0.0).alias("is_new"),
        )
        .filter(pl.col("buy_again_rank") <= candidates)
    )
    frames = [pairs]
    if explore_candidates > 0:
        hot = (
            item.filter(pl.col("item_recent_lines") > 0)
            .sort(["item_recent_lines", _IT], descending=[True, False])
            .head(explore_candidates)
        )
        new = (
            cust.select(_CU, "customer_baskets", *customer_cols)
            .join(hot, how="cross")
            .join(bought, on=[_CU, _IT], how="anti")
        )
        frames.append(new.with_columns(pl.lit(1.0).alias("is_new")))
    out = pl.concat(frames, how="diagonal_relaxed")
    return out.select(
        pl.col(_CU).cast(pl.Int32),
        pl.col(_IT).cast(pl.Int32),
        # inf (e.g. cycle_position after two purchases on one day) becomes a large finite value: "long overdue"
        *[
            pl.col(f).cast(pl.Float64).fill_null(_MISSING).fill_nan(_MISSING).clip(-1e9, 1e9).cast(pl.Float32)
            for f in FEATURES
        ],
    )


def training_frame(
    lines: pl.DataFrame,
    target_baskets: int,
    candidates: int,
    explore_candidates: int,
    horizon_days: float | None = None,
    customers: pl.Series | None = None,
) -> pl.DataFrame:
    """Candidates labelled ``_y`` = 1 when in the customer's ``r``-th last basket, for ``r = 1 … target_baskets``.

    With ``horizon_days``, the target is every basket from the ``r``-th last one that starts within that many days
    of it ("what will they buy in the next 30 days" instead of "in the next basket").

    ``customers``: train on these customers only (features still use everyone's history).
    Features come from the baskets before the target; only (customer, r) groups with a positive are kept
    (a group without one teaches a ranker nothing). Sorted by (``r``, customer) so groups are contiguous.
    """
    frames = []
    for r in range(1, target_baskets + 1):
        feats = candidate_features(lines, r, candidates, explore_candidates, customers)
        if feats.is_empty():
            break
        if horizon_days is None:
            target = lines.filter(pl.col(_RL) == r)
        else:
            start = lines.filter(pl.col(_RL) == r).group_by(_CU).agg(pl.col(_T).min().alias("_start"))
            target = (
                lines.filter(pl.col(_RL) <= r)
                .join(start, on=_CU)
                .filter(pl.col(_T) < pl.col("_start") + pl.duration(seconds=horizon_days * _DAY))
            )
        target = target.select(_CU, _IT).unique().with_columns(pl.lit(1, pl.Int8).alias(_Y))
        feats = feats.join(target, on=[_CU, _IT], how="left").with_columns(
            pl.col(_Y).fill_null(0), pl.lit(r, pl.Int32).alias("_r")
        )
        positive = feats.group_by(_CU).agg(pl.col(_Y).max()).filter(pl.col(_Y) > 0).select(_CU)
        frames.append(feats.join(positive, on=_CU, how="semi"))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames).sort("_r", _CU, _IT)  # a fixed row order: the booster's bagging depends on it


class LearnedHybridRecommender(Recommender):
    """Buy-again and trending candidates re-ranked by a LambdaRank booster learned from basket history (module
    docstring)."""

    name: ClassVar[str] = "hybrid_ltr"
    needs_transactions: ClassVar[bool] = True

    def __init__(
        self,
        target_baskets: int = 10,
        candidates: int = 100,
        explore_candidates: int = 20,
        rounds: int = 150,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_data_in_leaf: int = 100,
        seed: int = 0,
        horizon_days: float | None = None,
        max_training_customers: int = 20_000,
    ) -> None:
        for name, value, low in (
            ("target_baskets", target_baskets, 1),
            ("candidates", candidates, 1),
            ("explore_candidates", explore_candidates, 0),
            ("rounds", rounds, 1),
            ("num_leaves", num_leaves, 2),
            ("min_data_in_leaf", min_data_in_leaf, 1),
            ("max_training_customers", max_training_customers, 1),
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

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        if transactions is None:  # fit() refuses a model that needs_transactions without them
            raise ValueError("hybrid_ltr learns from basket history: fit it with transactions=<the purchase lines>")
        lines = basket_lines(transactions, self.customers_, self.items_)
        train = training_frame(
            lines,
            self.target_baskets,
            self.candidates,
            self.explore_candidates,
            self.horizon_days,
            self._training_customers(lines),
        )
        self.booster_text_ = self._train(train) if train.height else ""
        serve = candidate_features(lines, 0, self.candidates, self.explore_candidates)
        buy_again = serve.get_column("buy_again_relative").to_numpy().astype(np.float64)  # -1 for new items
        scores = self._predict(serve) if self.booster_text_ else buy_again
        spread = float(scores.max() - scores.min()) if scores.size else 0.0
        if self.booster_text_ and spread == 0.0:
            # Too little data for a single split (every prediction alike): rank by buy-again, not by item index.
            self.booster_text_, scores, spread = "", buy_again, float(buy_again.max() - buy_again.min())
        # Ties between the ranker's scores go to the better buy-again score (then, as everywhere, the lower item id).
        scores = np.asarray(scores, np.float64) + 1e-6 * max(spread, 1e-6) * buy_again
        cu, it = serve.get_column(_CU).to_numpy(), serve.get_column(_IT).to_numpy()
        # Shifted to be > 0 so that no candidate's score is a zero that a sparse matrix would drop.
        values = (np.asarray(scores, np.float64) - (scores.min() if scores.size else 0.0) + 1e-3).astype(np.float32)
        self.scores_ = sp.csr_matrix((values, (cu, it)), shape=counts.shape, dtype=np.float32)
        self.training_rows_ = int(train.height)

    def _training_customers(self, lines: pl.DataFrame) -> pl.Series | None:
        """All customers with two baskets or more, or a seeded sample of ``max_training_customers`` of them.

        The training frame has about ``target_baskets × (candidates + explore_candidates)`` rows per customer, so
        the sample bounds the fit's memory and time on a large customer base; scoring still covers everyone.
        """
        eligible = lines.filter(pl.col(_RL) >= 2).get_column(_CU).unique().sort()
        if eligible.len() <= self.max_training_customers:
            return None
        return eligible.sample(self.max_training_customers, seed=self.seed).sort()

    def _train(self, train: pl.DataFrame) -> str:
        import lightgbm as lgb

        sizes = train.group_by("_r", _CU, maintain_order=True).len().get_column("len").to_numpy()
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
        data = lgb.Dataset(
            train.select(FEATURES).to_numpy().astype(np.float32),
            train.get_column(_Y).to_numpy(),
            group=sizes,
            feature_name=[f.replace(".", "_") for f in FEATURES],
            free_raw_data=True,
        )
        return lgb.train(params, data, num_boost_round=self.rounds).model_to_string()

    def _predict(self, frame: pl.DataFrame) -> np.ndarray:
        if frame.is_empty():
            return np.empty(0, np.float64)
        return self._booster().predict(frame.select(FEATURES).to_numpy().astype(np.float32))

    def _booster(self) -> Any:
        import lightgbm as lgb

        if not self.booster_text_:
            raise ValueError("this model has no ranker: no customer had two baskets, so it ranks by buy-again")
        return lgb.Booster(model_str=self.booster_text_)

    def feature_importance(self) -> dict[str, float]:
        """Return ``{feature: total gain}`` of the fitted ranker, largest first."""
        self._check_fitted()
        gains = self._booster().feature_importance(importance_type="gain")
        return dict(sorted(zip(FEATURES, map(float, gains), strict=True), key=lambda kv: -kv[1]))

    def _score(self, batch: np.ndarray) -> np.ndarray:
        return dense_rows(self.scores_, batch)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **csr_arrays("scores", self.scores_),
            "booster": np.frombuffer(self.booster_text_.encode(), np.uint8),
            "training_rows": np.array([self.training_rows_], np.int64),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.scores_ = csr_from_arrays("scores", arrays)
        self.booster_text_ = np.asarray(arrays["booster"], np.uint8).tobytes().decode()
        self.training_rows_ = int(np.asarray(arrays["training_rows"])[0])
