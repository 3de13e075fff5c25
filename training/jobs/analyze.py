"""The analyze job: profiles, models, per-segment top items, a summary and plots from validated transactions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.analytics.clv import ClvConfig
from recsys.analytics.dashboard import FREQUENCY_BANDS
from recsys.analytics.lifecycle import STAGES
from recsys.analytics.plots import plot_calibration_holdout, plot_clv_distribution, plot_p_alive_matrix
from recsys.analytics.profiles import AnalyticsConfig, AnalyticsResult, build_profiles, segment_top_items
from recsys.analytics.summary import DURATION_HOLDOUT, FREQUENCY_HOLDOUT, as_utc_day, calibration_holdout
from recsys.columns import Columns
from recsys.columns import ProfileColumns as P

STEPS = ("fit models and build profiles", "holdout check", "segment top items", "plots", "write files")


def _holdout(
    transactions: pl.DataFrame, result: AnalyticsResult, time_unit: str, out_dir: Path, plots: bool
) -> dict[str, Any] | None:
    """Compare BG/NBD predictions with the holdout purchases after the calibration end (None without a holdout)."""
    last = as_utc_day(transactions.select(pl.col(Columns.timestamp).max()).item())
    if last <= result.as_of:
        return None
    frame = calibration_holdout(transactions, result.as_of, last, time_unit=time_unit)
    duration = float(frame[DURATION_HOLDOUT][0])
    x, t_x, T = (frame[c].to_numpy().astype(float) for c in (P.frequency, P.recency, P.T))
    predicted = result.bgnbd.conditional_expected(duration, x, t_x, T)
    actual = frame[FREQUENCY_HOLDOUT].to_numpy().astype(float)
    if plots:
        plot_calibration_holdout(frame, predicted, out_dir / "plots")
    return {
        "holdout_end": last.date().isoformat(),
        "holdout_length": duration,
        "customers": frame.height,
        "mae_per_customer": float(np.abs(predicted - actual).mean()),
        "actual_total": float(actual.sum()),
        "predicted_total": float(predicted.sum()),
        "aggregate_error_pct": float(100 * (predicted.sum() - actual.sum()) / max(actual.sum(), 1.0)),
        "by_frequency": _by_frequency(x, predicted, actual),
    }


def _by_frequency(x: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> list[dict[str, Any]]:
    # The classic BG/NBD check: mean holdout purchases by calibration repeat purchases, in the dashboard's bands
    out = []
    for lo, hi in FREQUENCY_BANDS:
        mask = (x >= lo) & (x < hi)
        n = int(mask.sum())
        if n:
            label = f"{lo}+" if hi >= 10**9 else (str(lo) if hi - lo == 1 else f"{lo}–{hi - 1}")
            out.append(
                {
                    "frequency": label,
                    "customers": n,
                    "actual": round(float(actual[mask].mean()), 4),
                    "predicted": round(float(predicted[mask].mean()), 4),
                }
            )
    return out


def _distribution(values: np.ndarray) -> dict[str, float]:
    qs = np.quantile(values, [0.5, 0.9, 0.99]) if len(values) else [0.0, 0.0, 0.0]
    return {
        "total": float(values.sum()),
        "mean": float(values.mean()) if len(values) else 0.0,
        "p50": float(qs[0]),
        "p90": float(qs[1]),
        "p99": float(qs[2]),
        "max": float(values.max()) if len(values) else 0.0,
    }


def run_analyze(
    result: Any,
    out_dir: Path,
    *,
    calibration_end: date | datetime | str | None = None,
    time_unit: str = "week",
    horizon_days: int = 365,
    margin: float = 0.30,
    annual_discount: float = 0.10,
    plots: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Analyse ``result.transactions`` (a ``LoadResult``) and write the analyze artifacts into ``out_dir``.

    Writes ``profiles.parquet``, ``segment_top_items.parquet``, ``models.json``, ``summary.json`` and ``plots/``.
    Without ``calibration_end`` everything is calibration (profiles as of the last data day). Returns the summary
    dict. Raises ``DataError``/``ConfigError`` on unusable data or options.
    """
    notify = on_step or (lambda _s: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    tx: pl.DataFrame = result.transactions
    catalog = getattr(result, "catalog", None)
    config = AnalyticsConfig(
        time_unit=time_unit, clv=ClvConfig(horizon_days=horizon_days, margin=margin, annual_discount=annual_discount)
    )
    notify(STEPS[0])
    analysis = build_profiles(tx, catalog=catalog, calibration_end=calibration_end, config=config)
    profiles = analysis.profiles
    notify(STEPS[1])
    holdout = _holdout(tx, analysis, time_unit, out_dir, plots) if calibration_end is not None else None
    notify(STEPS[2])
    cal_tx = tx.filter(pl.col(Columns.timestamp) < analysis.as_of + timedelta(days=1))
    top_items = segment_top_items(cal_tx, profiles)
    notify(STEPS[3])
    if plots:
        plot_p_alive_matrix(
            analysis.bgnbd,
            float(profiles[P.T].max()),
            int(min(profiles[P.frequency].quantile(0.99) or 1, 50)),
            out_dir / "plots",
        )
        plot_clv_distribution(profiles[P.clv].to_numpy(), out_dir / "plots")
    notify(STEPS[4])
    models = {
        "bgnbd": analysis.bgnbd.to_dict(),
        "gamma_gamma": analysis.gamma_gamma.to_dict() if analysis.gamma_gamma else None,
        "time_unit": time_unit,
        "as_of": analysis.as_of.isoformat(),
        "calibration_end": analysis.as_of.date().isoformat(),
        "clv": {
            "horizon_days": horizon_days,
            "margin": margin,
            "annual_discount": annual_discount,
            "method": "monthly discounting of BG/NBD expected purchases x Gamma-Gamma expected spend x margin",
        },
    }

    def counts(col: str) -> dict[Any, int]:
        return dict(profiles[col].value_counts(sort=True).iter_rows())

    lifecycle = counts(P.lifecycle)
    summary: dict[str, Any] = {
        "customers": profiles.height,
        "as_of": analysis.as_of.date().isoformat(),
        "segments": counts(P.segment),
        "lifecycle": {stage: int(lifecycle.get(stage, 0)) for stage in STAGES},
        "value_tiers": counts(P.value_tier),
        "clv": _distribution(profiles[P.clv].to_numpy()),
        "p_alive_mean": float(profiles[P.p_alive].mean()),
        "spend_frequency_correlation": models["gamma_gamma"]["correlation"] if models["gamma_gamma"] else None,
        "holdout": holdout,
        "segment_top_items": top_items.height,
    }
    profiles.write_parquet(out_dir / "profiles.parquet")
    top_items.write_parquet(out_dir / "segment_top_items.parquet")
    (out_dir / "models.json").write_text(json.dumps(models, indent=2, default=str))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
