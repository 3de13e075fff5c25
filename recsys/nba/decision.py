"""Decide: eligibility → P(accept) → expected value → arbitration → ranked decisions per customer and channel.

Pure: takes frames and a catalog, returns frames. The job in ``training/jobs/decide.py`` does the I/O.
Score = (P(accept)·(value + clv_share·clv − cost) − contact_cost) · lever; ``expected_value`` in the
output is the unlevered part (what the business expects to gain), ranking and arbitration use the score.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from recsys.clock import utcnow
from recsys.columns import Columns, ProfileColumns
from recsys.exceptions import DataError
from recsys.nba.affinity import offer_affinity
from recsys.nba.arbitration import Assignment, Budgets, assign
from recsys.nba.fields import NbaFields, conform
from recsys.nba.offers import Catalog, Offer
from recsys.nba.propensity import prior_probability
from recsys.nba.propensity_fit import design
from recsys.nba.propensity_model import PropensityModel
from recsys.nba.response_features import KIND_PREFIX, features_as_of
from recsys.nba.response_history import ResponseHistory
from recsys.nba.uplift import TwoModelUplift

DECISION_COLUMNS = ("customer_id", "channel", "offer_id", "rank", "expected_value", "p_accept", "reason", "arm")
NO_ARM = "none"


@dataclass
class DecisionResult:
    """Decisions (one row per customer × channel × offer, contract columns) and a JSON-able summary."""

    decisions: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    assignment: Assignment | None = None


def build_frame(profiles: pl.DataFrame, loyalty: pl.DataFrame | None = None) -> pl.DataFrame:
    """Return profiles joined with the optional loyalty snapshot, every schema field present and typed.

    ``loyalty`` columns (all optional besides ``customer_id``): ``tier``, ``points_balance``,
    ``points_to_next_tier``, ``complaints``. Missing values take ``fields.DEFAULTS`` (base tier, no points).
    Raises ``DataError`` if ``profiles`` lacks ``customer_id`` or repeats a customer.
    """
    cid = ProfileColumns.customer_id
    if cid not in profiles.columns:
        raise DataError(f"profiles have no '{cid}' column (columns: {profiles.columns}); run `centric analyze` first")
    if profiles.get_column(cid).is_duplicated().any():
        raise DataError("profiles repeat some customer_id values; expected one row per customer")
    frame = profiles.with_columns(pl.col(cid).cast(pl.String))
    if loyalty is not None and not loyalty.is_empty():
        keep = [
            c
            for c in (NbaFields.tier, NbaFields.points_balance, NbaFields.points_to_next_tier, NbaFields.complaints)
            if c in loyalty.columns
        ]
        frame = frame.drop([c for c in keep if c in frame.columns]).join(
            loyalty.select(pl.col(cid).cast(pl.String), *keep), on=cid, how="left", maintain_order="left"
        )
    return conform(frame)


@dataclass(frozen=True)
class FeatureContext:
    """What a fitted :class:`PropensityModel` reads at decision time: purchases and response history, as of ``now``.

    ``history`` carries the catalog offers' items and kinds (``event_history.catalog_offer_table``).
    """

    purchases: pl.DataFrame
    history: ResponseHistory
    now: dt.datetime


def _propensity(
    frame: pl.DataFrame,
    offer: Offer,
    model: PropensityModel | None,
    context: FeatureContext | None,
) -> np.ndarray:
    if model is not None and not model.profile_features:
        if context is None:
            raise DataError("a fitted propensity model needs purchases to compute its features; pass transactions")
        pairs = pl.DataFrame({"customer_id": frame.get_column(ProfileColumns.customer_id), "offer_id": offer.id})
        kinds = tuple(f for f in model.features if f.startswith(KIND_PREFIX))
        features = features_as_of(pairs, context.purchases, context.history, context.now, kinds)
        return model.predict_proba(design(features, list(model.features)))
    if model is None:
        return prior_probability(
            offer.base_rate,
            frame.get_column(NbaFields.affinity).to_numpy(),
            frame.get_column(ProfileColumns.p_alive).to_numpy(),
        )
    x = np.column_stack(
        [
            frame.get_column(name).cast(pl.Float64, strict=False).to_numpy()
            if name in frame.columns
            else np.full(frame.height, np.nan)
            for name in model.features
        ]
    )
    return model.predict_proba(x)


def decide(
    frame: pl.DataFrame,
    catalog: Catalog,
    *,
    recommendations: pl.DataFrame | None = None,
    items: pl.DataFrame | None = None,
    model: PropensityModel | None = None,
    context: FeatureContext | None = None,
    now: dt.datetime | None = None,
    uplift: Uplift | None = None,
) -> DecisionResult:
    """Return ranked decisions for every customer of ``frame`` (from :func:`build_frame`).

    Offers outside their validity window at ``now`` are skipped; holdout-arm customers get no offer of
    their experiment; arbitration enforces budgets and ``policy.max_offers_per_customer``. A fitted
    :class:`PropensityModel` needs ``context`` (its features as of ``context.now``).
    """
    now = now or utcnow()
    cid = ProfileColumns.customer_id
    n, offers = frame.height, [o for o in catalog.offers if o.is_valid_at(now)]
    m = len(offers)
    customer_ids = frame.get_column(cid)
    arms = {exp.id: exp.assign(customer_ids.to_list()) for exp in catalog.experiments}
    score = np.full((n, m), -np.inf, dtype=np.float32)
    p = np.zeros((n, m), dtype=np.float32)
    ev = np.zeros((n, m), dtype=np.float32)
    channel_ok: list[dict[str, np.ndarray]] = []
    arm_of: list[pl.Series] = []
    clv = frame.get_column(ProfileColumns.clv).fill_null(0.0).fill_nan(0.0).to_numpy()
    for j, offer in enumerate(offers):
        covering = [e for e in catalog.experiments if e.covers(offer.id)]
        exp = covering[0] if covering else None  # the offer's arm (attribution) comes from the first one
        arm = arms[exp.id] if exp else pl.Series("arm", [NO_ARM] * n, dtype=pl.String)
        arm_of.append(arm)
        local = frame.with_columns(
            offer_affinity(frame, offer, recommendations, items).alias(NbaFields.affinity), arm.alias(NbaFields.arm)
        )
        # a holdout of ANY covering experiment gets no offer, or that experiment's control would be contaminated
        allowed = np.ones(n, dtype=bool)
        for e in covering:
            allowed &= ~arms[e.id].is_in(sorted(e.holdout_arms())).to_numpy()
        per_channel = {}
        for channel in offer.channels:
            ok = allowed.copy()
            if offer.eligibility is not None:
                ok &= offer.eligibility.mask(local.with_columns(pl.lit(channel).alias(NbaFields.channel))).to_numpy()
            per_channel[channel] = ok
        channel_ok.append(per_channel)
        eligible = np.logical_or.reduce(list(per_channel.values()))
        value = float(offer.value) + offer.value_clv_share * np.maximum(clv, 0)
        if uplift is not None and uplift.covers(offer.id):
            # incremental value: the cost is paid per redemption, so it is expected at the treated probability
            p_j, p_control = uplift.model.predict(local)
            ev_j = (p_j - p_control) * value - p_j * float(offer.cost) - float(offer.contact_cost)
        else:
            p_j = _propensity(local, offer, model, context)
            ev_j = p_j * (value - float(offer.cost)) - float(offer.contact_cost)
        p[:, j], ev[:, j] = p_j, ev_j
        score[:, j] = np.where(eligible, ev_j * offer.lever, -np.inf)
    budgets = Budgets(
        np.asarray([o.max_contacts if o.max_contacts is not None else np.inf for o in offers], dtype=np.float64),
        np.asarray([o.max_redemptions if o.max_redemptions is not None else np.inf for o in offers], dtype=np.float64),
        np.asarray([float(o.max_spend) if o.max_spend is not None else np.inf for o in offers], dtype=np.float64),
    )
    cost = np.asarray([float(o.cost) for o in offers], dtype=np.float64)
    result = assign(score, p, cost, budgets, catalog.policy.max_offers_per_customer)
    decisions = _rows(result, offers, frame, channel_ok, arm_of, score, ev, p)
    per_offer = (
        decisions.unique([Columns.customer_id, "offer_id"])
        .group_by("offer_id")
        .agg(pl.len().alias("customers"), pl.col("p_accept").sum().alias("expected_redemptions"))
    )
    summary = {
        "customers": n,
        "offers": m,
        "offers_skipped_outside_window": len(catalog.offers) - m,
        "customers_with_offers": int(np.unique(result.rows).size),
        "decisions": decisions.height,
        "expected_value": round(float(ev[result.rows, result.cols].sum()), 2),
        "arbitration_gap": round(result.gap, 4),
        "per_offer": {
            r["offer_id"]: {"customers": r["customers"], "expected_redemptions": round(r["expected_redemptions"], 2)}
            for r in per_offer.iter_rows(named=True)
        },
        "propensity": _model_label(model),
        "objective": "response" if uplift is None else f"uplift (experiment {uplift.experiment}, two-model)",
    }
    return DecisionResult(decisions, summary, result)


@dataclass(frozen=True)
class Uplift:
    """Rank the offers of ``experiment`` (all offers when it names none) by incremental value from ``model``."""

    model: TwoModelUplift
    experiment: str
    offers: frozenset[str] = frozenset()

    def covers(self, offer_id: str) -> bool:
        """Whether ``offer_id`` is ranked by uplift."""
        return not self.offers or offer_id in self.offers


def _model_label(model: PropensityModel | None) -> str:
    if model is None:
        return "prior"
    if not model.profile_features:
        r = model.report
        return f"model {r.get('version', '?')} ({model.learner}, validation AUC {r.get('auc', float('nan')):.3f})"
    return "model"


def _reasons(offer: Offer, top_categories: pl.Series) -> pl.Series:
    """The offer's reason, plus the customer's own top category when the offer targets it."""
    if not offer.target_categories:
        return pl.Series("reason", [offer.reason] * top_categories.len(), dtype=pl.String)
    liked = pl.col("t").list.set_intersection(pl.lit(pl.Series(list(offer.target_categories)).implode())).list.first()
    return (
        pl.DataFrame({"t": top_categories})
        .select(
            pl.when(liked.is_not_null())
            .then(pl.format("{} ({})", pl.lit(offer.reason), liked))
            .otherwise(pl.lit(offer.reason))
            .alias("reason")
        )
        .to_series()
    )


def _rows(
    result: Assignment,
    offers: list[Offer],
    frame: pl.DataFrame,
    channel_ok: list[dict[str, np.ndarray]],
    arm_of: list[pl.Series],
    score: np.ndarray,
    ev: np.ndarray,
    p: np.ndarray,
) -> pl.DataFrame:
    customer_ids = frame.get_column(ProfileColumns.customer_id)
    top_categories = frame.get_column(ProfileColumns.top_categories)
    parts = []
    for j, offer in enumerate(offers):
        rows = result.rows[result.cols == j]
        if rows.size == 0:
            continue
        for channel, ok in channel_ok[j].items():
            keep = rows[ok[rows]]
            if keep.size == 0:
                continue
            parts.append(
                pl.DataFrame(
                    {
                        "customer_id": customer_ids.gather(keep),
                        "channel": pl.Series([channel] * keep.size, dtype=pl.String),
                        "offer_id": pl.Series([offer.id] * keep.size, dtype=pl.String),
                        "_score": score[keep, j].astype(np.float64),
                        "expected_value": ev[keep, j].astype(np.float64),
                        "p_accept": p[keep, j].astype(np.float64),
                        "reason": _reasons(offer, top_categories.gather(keep)),
                        "arm": arm_of[j].gather(keep),
                    }
                )
            )
    if not parts:
        schema = {
            "customer_id": pl.String,
            "channel": pl.String,
            "offer_id": pl.String,
            "rank": pl.Int32,
            "expected_value": pl.Float64,
            "p_accept": pl.Float64,
            "reason": pl.String,
            "arm": pl.String,
        }
        return pl.DataFrame(schema=schema)
    frame = pl.concat(parts).sort(
        ["customer_id", "channel", "_score", "offer_id"], descending=[False, False, True, False]
    )
    return frame.with_columns(
        pl.int_range(1, pl.len() + 1).over(["customer_id", "channel"]).cast(pl.Int32).alias("rank")
    ).select(DECISION_COLUMNS)
