"""The fields an eligibility rule may use, with their types, and how a decision frame supplies them.

Profile fields come from ``profiles.parquet`` (``ProfileColumns``); loyalty fields (``tier``,
``points_balance``, ``points_to_next_tier``) and ``complaints`` come from an optional loyalty/feedback
snapshot; ``affinity``, ``channel`` and ``arm`` are per (customer, offer) and filled by the decide step.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl

from recsys.columns import ProfileColumns


class FieldType(StrEnum):
    """Types of the expression language."""

    NUM = "number"
    STR = "string"
    BOOL = "boolean"
    LIST_STR = "list of strings"
    LIST_NUM = "list of numbers"


class NbaFields:
    """Names of the fields that exist only in decision frames (not in ``profiles.parquet``)."""

    tier = "tier"
    points_balance = "points_balance"
    points_to_next_tier = "points_to_next_tier"
    complaints = "complaints"
    affinity = "affinity"  # share of the customer's interest that falls on the offer's targets, in [0, 1]
    channel = "channel"
    arm = "arm"


P = ProfileColumns
FIELD_TYPES: dict[str, FieldType] = {
    P.segment: FieldType.STR,
    P.lifecycle: FieldType.STR,
    P.value_tier: FieldType.STR,
    P.clv: FieldType.NUM,
    P.p_alive: FieldType.NUM,
    P.churn_risk: FieldType.NUM,
    P.orders: FieldType.NUM,
    P.frequency: FieldType.NUM,
    P.recency: FieldType.NUM,
    P.monetary: FieldType.NUM,
    P.total_spend: FieldType.NUM,
    P.r_score: FieldType.NUM,
    P.f_score: FieldType.NUM,
    P.m_score: FieldType.NUM,
    P.expected_purchases: FieldType.NUM,
    P.days_since_last_purchase: FieldType.NUM,
    P.top_categories: FieldType.LIST_STR,
    NbaFields.tier: FieldType.STR,
    NbaFields.points_balance: FieldType.NUM,
    NbaFields.points_to_next_tier: FieldType.NUM,
    NbaFields.complaints: FieldType.NUM,
    NbaFields.affinity: FieldType.NUM,
    NbaFields.channel: FieldType.STR,
    NbaFields.arm: FieldType.STR,
}

# Used when a profile or the loyalty snapshot lacks a field, so a rule never fails on a missing column:
# a customer with no loyalty record is treated as a base-tier member with no points.
DEFAULTS: dict[str, object] = {
    NbaFields.tier: "base",
    NbaFields.points_balance: 0,
    NbaFields.points_to_next_tier: None,
    NbaFields.complaints: 0,
}

_POLARS_TYPES: dict[FieldType, pl.DataType] = {
    FieldType.NUM: pl.Float64(),
    FieldType.STR: pl.String(),
    FieldType.BOOL: pl.Boolean(),
    FieldType.LIST_STR: pl.List(pl.String),
    FieldType.LIST_NUM: pl.List(pl.Float64),
}


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` with every schema field present and cast to its type (missing ones null or defaulted).

    Extra columns are kept. Raises nothing: a column that cannot be cast becomes null (strict=False).
    """
    exprs = []
    for name, ftype in FIELD_TYPES.items():
        dtype = _POLARS_TYPES[ftype]
        if name in frame.columns:
            expr = pl.col(name).cast(dtype, strict=False)
            if dtype.is_float():
                expr = expr.fill_nan(None)  # NaN is unknown, like null: polars would order it above every number
            if DEFAULTS.get(name) is not None:
                expr = expr.fill_null(pl.lit(DEFAULTS[name]).cast(dtype))
        else:
            expr = pl.lit(DEFAULTS.get(name), dtype=dtype)
        exprs.append(expr.alias(name))
    return frame.with_columns(exprs)


def conform_record(record: dict[str, object]) -> dict[str, object]:
    """Return one customer's fields with the same defaults :func:`conform` applies to a frame."""
    out = dict(record)
    for name, default in DEFAULTS.items():
        if out.get(name) is None:
            out[name] = default
    return out
