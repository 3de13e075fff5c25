"""Aggregates of a snapshot for the dashboard, computed once at publish time from the analysis artifacts.

The overview page must render in well under 300 ms, so it never scans every profile per request: publishing
stores this small document (a few kB) beside the snapshot, and the service reads it once per version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from recsys.analytics.lifecycle import STAGES
from recsys.columns import ProfileColumns as P

# Purchase-count bands of the P(alive) map (repeat purchase periods, BTYD ``frequency``): [lo, hi) each.
FREQUENCY_BANDS: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 5), (5, 10), (10, 20), (20, 50), (50, 10**9))
# Weeks since the last purchase (``T - recency``, in the analysis time unit): [lo, hi) each.
SILENCE_BANDS: tuple[tuple[float, float], ...] = ((0, 2), (2, 4), (4, 8), (8, 13), (13, 26), (26, 52), (52, math.inf))
EVALUATION_METRICS = (
    "ndcg@10",
    "recall@10",
    "hit_rate@10",
    "repeat_recall@10",
    "explore_recall@10",
    "coverage@10",
)
DOCUMENT_VERSION = 1


def nice_edges(maximum: float, *, start: float = 10.0) -> list[float]:
    """Return histogram edges 0, start, 2·start, 5·start, 10·start … (1-2-5 steps) up to just above ``maximum``."""
    edges = [0.0]
    value = start
    steps = (2.0, 2.5, 2.0)  # 1 → 2 → 5 → 10
    i = 0
    while edges[-1] <= maximum:
        edges.append(value)
        value *= steps[i % 3]
        i += 1
    return edges


def _band_label(lo: float, hi: float, unit: str) -> str:
    if math.isinf(hi) or hi >= 10**9:
        return f"{lo:g}+ {unit}".strip()
    if hi - lo == 1:
        return f"{lo:g} {unit}".strip()
    return f"{lo:g}–{hi - 1 if unit == 'repeat' else hi:g} {unit}".strip()


def rfm_grid(profiles: pl.DataFrame) -> list[dict[str, Any]]:
    """Return one cell per (r_score, f_score) 1..5 × 1..5: ``{r, f, customers, revenue}`` (empty cells included)."""
    grouped = profiles.group_by(P.r_score, P.f_score).agg(
        pl.len().alias("customers"), pl.col(P.total_spend).sum().alias("revenue")
    )
    found = {(int(r), int(f)): (int(n), float(v)) for r, f, n, v in grouped.iter_rows()}
    return [
        {
            "r": r,
            "f": f,
            "customers": found.get((r, f), (0, 0.0))[0],
            "revenue": round(found.get((r, f), (0, 0.0))[1], 2),
        }
        for r in range(5, 0, -1)
        for f in range(1, 6)
    ]


def clv_histogram(profiles: pl.DataFrame) -> list[dict[str, Any]]:
    """Return CLV bins ``{lo, hi, customers, clv}`` on 1-2-5 edges (negative CLVs count in the first bin)."""
    values = profiles.get_column(P.clv).fill_null(0.0).clip(lower_bound=0.0)
    if values.len() == 0:
        return []
    edges = nice_edges(float(values.to_numpy().max()))
    out = []
    for lo, hi in zip(edges, edges[1:]):
        mask = (values >= lo) & (values < hi)
        out.append(
            {"lo": lo, "hi": hi, "customers": int(mask.sum()), "clv": round(float(values.filter(mask).sum()), 2)}
        )
    return out


def p_alive_map(profiles: pl.DataFrame) -> dict[str, Any]:
    """Return mean P(alive) and counts by purchase frequency × time since the last purchase (both banded)."""
    silence = pl.col(P.T) - pl.col(P.recency)
    cells = []
    for fi, (flo, fhi) in enumerate(FREQUENCY_BANDS):
        in_f = profiles.filter((pl.col(P.frequency) >= flo) & (pl.col(P.frequency) < fhi))
        for si, (slo, shi) in enumerate(SILENCE_BANDS):
            part = in_f.filter((silence >= slo) & (silence < shi))
            n = part.height
            cells.append(
                {
                    "f": fi,
                    "s": si,
                    "customers": n,
                    "p_alive": round(float(part.get_column(P.p_alive).mean()), 4) if n else None,  # type: ignore[arg-type]
                }
            )
    return {
        "frequency_bands": [_band_label(lo, hi, "repeat") for lo, hi in FREQUENCY_BANDS],
        "silence_bands": [_band_label(lo, hi, "") for lo, hi in SILENCE_BANDS],
        "cells": cells,
    }


def evaluation_table(results: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return ``{"protocol", "metrics", "models": [{"model", metric: value…}]}`` from an evaluation ``results.json``."""
    if not results or not isinstance(results.get("models"), Mapping):
        return None
    rows: list[dict[str, Any]] = []
    for name, stats in results["models"].items():
        if not isinstance(stats, Mapping):
            continue
        rows.append({"model": str(name), **{m: stats.get(m) for m in EVALUATION_METRICS}})
    rows.sort(key=lambda r: -float(r.get("ndcg@10") or 0.0))
    protocol = results.get("protocol")
    return {
        "protocol": protocol if isinstance(protocol, str) else (protocol or {}).get("name", str(protocol or "")),
        "metrics": list(EVALUATION_METRICS),
        "models": rows,
    }


def build_dashboard(
    profiles: pl.DataFrame | None,
    *,
    summary: Mapping[str, Any] | None = None,
    evaluation: Mapping[str, Any] | None = None,
    train_manifest: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the dashboard document of a snapshot: customers, revenue, RFM grid, lifecycle funnel, CLV, P(alive).

    Every part is present (empty or ``None``) so that readers need no version checks; money is in currency units.
    """
    doc: dict[str, Any] = {
        "document_version": DOCUMENT_VERSION,
        "customers": 0,
        "revenue": None,
        "clv_total": None,
        "p_alive_mean": None,
        "data_until": None,
        "rfm": [],
        "lifecycle": [],
        "segments": [],
        "clv_histogram": [],
        "p_alive_map": None,
    }
    # Profiles written by other tools may hold only some columns: each part needs its own, and is left empty
    # without them (publishing never fails for the dashboard's sake).
    frame = profiles if profiles is not None else pl.DataFrame()
    has = set(frame.columns).issuperset
    doc["customers"] = frame.height
    if frame.height:
        if has([P.total_spend]):
            doc["revenue"] = round(float(frame.get_column(P.total_spend).sum()), 2)
        if has([P.clv]):
            doc["clv_total"] = round(float(frame.get_column(P.clv).sum()), 2)
            doc["clv_histogram"] = clv_histogram(frame)
        if has([P.p_alive]):
            doc["p_alive_mean"] = round(float(frame.get_column(P.p_alive).mean()), 4)  # type: ignore[arg-type]
        if has([P.last_purchase]):
            doc["data_until"] = str(frame.get_column(P.last_purchase).max())
        if has([P.r_score, P.f_score, P.total_spend]):
            doc["rfm"] = rfm_grid(frame)
        if has([P.lifecycle]):
            lifecycle = dict(frame.group_by(P.lifecycle).len().iter_rows())
            doc["lifecycle"] = [{"stage": s, "customers": int(lifecycle.get(s, 0))} for s in STAGES]
        if has([P.segment, P.total_spend, P.clv]):
            segments = (
                frame.group_by(P.segment)
                .agg(
                    pl.len().alias("customers"),
                    pl.col(P.total_spend).sum().alias("revenue"),
                    pl.col(P.clv).sum().alias("clv"),
                )
                .sort("customers", descending=True)
            )
            doc["segments"] = [
                {"segment": s, "customers": int(n), "revenue": round(float(v), 2), "clv": round(float(c), 2)}
                for s, n, v, c in segments.iter_rows()
            ]
        if has([P.frequency, P.recency, P.T, P.p_alive]):
            doc["p_alive_map"] = p_alive_map(frame)
    doc["as_of"] = (summary or {}).get("as_of")
    doc["holdout"] = (summary or {}).get("holdout")
    doc["evaluation"] = evaluation_table(evaluation)
    bgnbd = (models or {}).get("bgnbd") or None
    doc["bgnbd"] = {k: bgnbd[k] for k in ("r", "alpha", "a", "b")} if bgnbd else None
    chosen = (models or {}).get("clv_model") or None
    # the profile's p_alive comes from the chosen CLV model, so the customer page's curve must use that one too
    doc["clv_model"] = {"name": chosen["name"], "params": chosen["params"]} if chosen else None
    doc["time_unit"] = (models or {}).get("time_unit")
    manifest = train_manifest or {}
    doc["training"] = {
        "trained_at": manifest.get("trained_at"),
        "primary_model": manifest.get("primary_model"),
        "sources": manifest.get("sources") or {},
        "counts": manifest.get("counts") or {},
    }
    return doc
