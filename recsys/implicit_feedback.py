"""Views and clicks as extra implicit feedback for the collaborative models (off by default).

With ``view_weight`` / ``click_weight`` above 0, the models that learn *which items go together* (ALS, BPR, item
kNN, user kNN, and so the linear hybrid's explore part) learn from::

    purchases + view_weight × views + click_weight × clicks

on both of their inputs, the purchase counts and the recency-decayed counts. Nothing else sees a view or a click:
buy-again and the repeat features, the "already bought" filter (a viewed item is still a new item to suggest),
purchase popularity, trending, fallbacks, analytics and CLV all stay purchases only. That split happens in one
place, :meth:`recsys.models.base.Recommender.fit` (``feedback=``), from the model's ``learns_from_feedback``.

- **One per pair.** Each (customer, item) pair counts once per kind, however often it was viewed or clicked (a
  refreshed page or a bot must not outweigh purchases); its newest event sets its recency.
- **Ids of the purchases.** Pairs are mapped (as text, padding stripped as from purchase lines) onto the purchase
  matrix's customers and items; a pair whose customer or item was never in a purchase is dropped and counted
  (``dropped_unknown_customer`` / ``dropped_unknown_item``): there is nothing to recommend to a customer who never
  bought, and an item nobody bought has no stock or price history to serve it with.
- **Measured first.** ``benchmarks/bench_implicit_feedback.py`` measures NDCG@10 at several weights through this
  path; see benchmarks/README.md before turning it on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
import scipy.sparse as sp

from recsys.columns import Columns
from recsys.exceptions import ConfigError, DataError
from recsys.matrix import PurchaseMatrix, build_matrix

KINDS = ("view", "click")
TYPE = "type"  # the event type column of the implicit rows (``recsys.events.history.implicit_events``)
# The largest weight: one view worth a thousand purchases is surely a typo, and a weight past float32's range
# (1e39) made the matrices inf and the factors NaN, with no error.
MAX_WEIGHT = 1000.0


def check_weight(name: str, value: Any) -> float:
    """Return ``value`` as a float weight in [0, ``MAX_WEIGHT``]; raises ``ConfigError`` naming ``name`` and the value
    otherwise."""
    kind = name.removesuffix("_weight")
    hint = (
        f"give {name} a number from 0 to {MAX_WEIGHT:g} (0 = off, the default; e.g. 0.1 counts one {kind} as a tenth "
        "of a purchase)"
    )
    if isinstance(value, bool):
        raise ConfigError(f"{name} = {value!r} is not a number; {hint}")
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} = {value!r} is not a number; {hint}") from None
    if not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"{name} = {value!r} is {'negative' if weight < 0 else 'not finite'}; {hint}")
    if weight > MAX_WEIGHT:
        raise ConfigError(f"{name} = {value!r} is above {MAX_WEIGHT:g}; {hint}")
    return weight


@dataclass(frozen=True)
class FeedbackWeights:
    """How much one viewed / clicked (customer, item) pair counts next to one purchase line; 0 = not used."""

    view: float = 0.0
    click: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "view", check_weight("view_weight", self.view))
        object.__setattr__(self, "click", check_weight("click_weight", self.click))

    @property
    def enabled(self) -> bool:
        """Whether any kind counts (only then are the rows read at all)."""
        return self.view > 0 or self.click > 0

    def of(self, kind: str) -> float:
        """The weight of ``kind`` (``view`` or ``click``)."""
        return self.view if kind == "view" else self.click

    def to_dict(self) -> dict[str, float]:
        """``{"view_weight": …, "click_weight": …}``."""
        return {"view_weight": self.view, "click_weight": self.click}


@dataclass(frozen=True)
class Feedback:
    """The weighted views and clicks on a purchase matrix's ids: ``counts`` and (when asked) ``recent`` (decayed).

    ``summary``: the weights, the rows read and the pairs added per kind, the pairs of unknown ids and the rows
    without a timestamp dropped, and the stored cells.
    """

    counts: sp.csr_matrix
    recent: sp.csr_matrix | None
    summary: dict[str, Any] = field(default_factory=dict)

    def check_shape(self, shape: tuple[int, int]) -> None:
        """Raise ``ValueError`` unless the feedback has the purchases' ``shape`` (customers × items)."""
        if self.counts.shape != tuple(shape):
            raise ValueError(
                f"feedback has shape {self.counts.shape}, the purchases {tuple(shape)}: build it on the same id maps"
            )

    def added_to(
        self, counts: sp.csr_matrix, recent: sp.csr_matrix | None
    ) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
        """Return ``(counts + feedback, recent + decayed feedback)`` as sorted float32 CSR; raises ``ValueError`` on
        a shape mismatch."""
        self.check_shape(counts.shape)
        out = _csr(counts + self.counts)
        if recent is None:
            return out, None
        extra = self.recent if self.recent is not None else self.counts
        return out, _csr(recent + extra)


def _csr(matrix: Any) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype="float32")
    out.sort_indices()
    return out


def empty_rows() -> pl.DataFrame:
    """An empty frame of implicit rows (``customer_id``, ``item_id``, ``timestamp``, ``type``)."""
    return pl.DataFrame(
        schema={
            Columns.customer_id: pl.String,
            Columns.item_id: pl.String,
            Columns.timestamp: pl.Datetime("us", "UTC"),
            TYPE: pl.String,
        }
    )


def feedback_matrices(
    rows: pl.DataFrame | None,
    purchases: PurchaseMatrix,
    weights: FeedbackWeights,
    *,
    half_life_days: float | None = None,
    now: datetime | None = None,
) -> Feedback | None:
    """Return the weighted feedback of ``rows`` on ``purchases``' ids, or ``None`` when every weight is 0 (or no
    ``rows`` are given).

    ``rows``: views and clicks (``customer_id``, ``item_id``, ``timestamp``, ``type``). With ``half_life_days`` the
    decayed matrix is built too, at ``now`` (as the purchases' ``recent=`` matrix; a pair newer than ``now`` counts
    fully). Raises ``DataError`` when a needed column is missing.
    """
    if rows is None or not weights.enabled:
        return None
    missing = [c for c in (Columns.customer_id, Columns.item_id, Columns.timestamp, TYPE) if c not in rows.columns]
    if missing:
        raise DataError(
            f"views and clicks are missing column(s) {missing}; expected customer_id, item_id, timestamp, type "
            "(recsys.events.history.implicit_events)"
        )
    rows = _text_ids(rows)
    shape = purchases.matrix.shape
    counts = sp.csr_matrix(shape, dtype="float32")
    recent = sp.csr_matrix(shape, dtype="float32") if half_life_days is not None else None
    summary: dict[str, Any] = {**weights.to_dict(), "used": True, "rows": {}, "pairs_added": {}}
    dropped_customer = dropped_item = undated = 0
    for kind in KINDS:
        of_kind = rows.filter(pl.col(TYPE) == kind)
        summary["rows"][kind] = of_kind.height
        undated += of_kind.get_column(Columns.timestamp).null_count() if weights.of(kind) > 0 else 0
        of_kind = of_kind.filter(pl.col(Columns.timestamp).is_not_null())  # no date, no recency: not used
        weight = weights.of(kind)
        if weight <= 0 or of_kind.is_empty():
            summary["pairs_added"][kind] = 0
            continue
        pairs = of_kind.group_by(Columns.customer_id, Columns.item_id).agg(pl.col(Columns.timestamp).max())
        binary = build_matrix(pairs, weighting="count", customers=purchases.customers, items=purchases.items)
        summary["pairs_added"][kind] = binary.nnz
        dropped_customer += _unknown(pairs, Columns.customer_id, purchases)
        dropped_item += _unknown(pairs, Columns.item_id, purchases, known_customers_only=True)
        counts = counts + weight * binary.matrix
        if recent is not None:
            decayed = build_matrix(
                pairs,
                weighting="decay",
                half_life_days=half_life_days,
                now=now,
                customers=purchases.customers,
                items=purchases.items,
            )
            recent = recent + weight * decayed.matrix
    counts = _csr(counts)
    summary.update(
        dropped_unknown_customer=dropped_customer,
        dropped_unknown_item=dropped_item,
        dropped_no_timestamp=undated,
        cells=int(counts.nnz),
    )
    return Feedback(counts, _csr(recent) if recent is not None else None, summary)


def _text_ids(rows: pl.DataFrame) -> pl.DataFrame:
    """The ids as the purchases hold them: text, without the padding that the history strips from purchase lines (a
    view of " I1 " is a view of the bought "I1", not an unknown item)."""
    return rows.with_columns(
        pl.col(column).cast(pl.String).str.strip_chars() for column in (Columns.customer_id, Columns.item_id)
    )


def _unknown(pairs: pl.DataFrame, column: str, purchases: PurchaseMatrix, known_customers_only: bool = False) -> int:
    """Pairs whose ``column`` id is not in the purchases (items: among pairs of known customers, so that a pair is
    counted once)."""
    customers = pl.DataFrame({Columns.customer_id: pl.Series(purchases.customers.external_ids, dtype=pl.String)})
    if known_customers_only:
        pairs = pairs.join(customers, on=Columns.customer_id, how="semi")
        known = pl.DataFrame({column: pl.Series(purchases.items.external_ids, dtype=pl.String)})
    else:
        known = customers
    return pairs.join(known, on=column, how="anti").height


def before_holdout(rows: pl.DataFrame, held_out: pl.DataFrame) -> pl.DataFrame:
    """Return the ``rows`` of each customer from before the day (UTC) of that customer's first held-out purchase line.

    A validation model learns only what the model serving an order would have known: the daily cycle trains
    overnight, so the views and clicks of the order's own day (the browsing that ends in it) are not in it. Live
    fold-in brings a day's purchases to serving, never its views. Customers with nothing held out keep all their rows.
    """
    start = held_out.group_by(Columns.customer_id).agg(
        pl.col(Columns.timestamp).min().dt.truncate("1d").alias("_held_out")
    )
    joined = _text_ids(rows).join(start, on=Columns.customer_id, how="left")
    return joined.filter(pl.col("_held_out").is_null() | (pl.col(Columns.timestamp) < pl.col("_held_out"))).drop(
        "_held_out"
    )


def off_summary() -> dict[str, Any]:
    """The manifest entry of a model trained without views and clicks."""
    return {**FeedbackWeights().to_dict(), "used": False}


def stage_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """The flat counts of a feedback summary for a run report: the weights and, when used, the pairs added per kind
    and the rows dropped."""
    out: dict[str, Any] = {name: summary.get(name, 0.0) for name in ("view_weight", "click_weight")}
    if summary.get("used"):
        out.update({f"{kind}_pairs_added": n for kind, n in summary.get("pairs_added", {}).items()})
        out["feedback_dropped_unknown"] = summary.get("dropped_unknown_customer", 0) + summary.get(
            "dropped_unknown_item", 0
        )
    return out
