"""The analyze job: profiles, models, per-segment top items, a summary and plots from validated transactions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.analytics.bgnbd import BetaGeoModel
from recsys.analytics.btyd import AUTO, MODELS, check_model_name, make_model
from recsys.analytics.clv import ClvConfig
from recsys.analytics.dashboard import FREQUENCY_BANDS
from recsys.analytics.lifecycle import STAGES
from recsys.analytics.plots import (
    plot_calibration_holdout,
    plot_clv_distribution,
    plot_p_alive_matrix,
    plot_tracking,
)
from recsys.analytics.profiles import AnalyticsConfig, AnalyticsResult, build_profiles, segment_top_items
from recsys.analytics.selection import (
    DEFAULT_MODEL,
    HOLDOUT_FRACTION,
    METRIC,
    PREFERENCE,
    TIE,
    HoldoutSplit,
    ModelScore,
    choose,
    holdout_frame,
    score_models,
    split_at,
    split_by_fraction,
)
from recsys.analytics.summary import DURATION_HOLDOUT, FREQUENCY_HOLDOUT, unit_days
from recsys.analytics.tracking import tracking_totals, weekly_tracking
from recsys.columns import Columns
from recsys.columns import ProfileColumns as P
from recsys.exceptions import DataError

AUTO_REASON = f"auto: lowest {METRIC} on the holdout (within {100 * TIE:g} %: first of {', '.join(PREFERENCE)})"
STEPS = (
    "choose the CLV model on a holdout",
    "fit models and build profiles",
    "holdout check",
    "segment top items",
    "plots",
    "write files",
)


@dataclass
class Selection:
    """The model choice: the split, every candidate's holdout score, the chosen name and why."""

    chosen: str
    reason: str
    split: HoldoutSplit | None = None
    frame: pl.DataFrame | None = None
    scores: list[ModelScore] = field(default_factory=list)

    @property
    def best(self) -> ModelScore | None:
        """The chosen model's calibration fit and holdout predictions (None when it was not scored)."""
        return next((s for s in self.scores if s.name == self.chosen and s.model is not None), None)

    def to_dict(self, unit: float) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "reason": self.reason,
            "metric": METRIC,
            "split": self.split.to_dict(unit) if self.split else None,
            "customers": self.frame.height if self.frame is not None else 0,
            "models": {s.name: s.to_dict() for s in self.scores},
        }


def _select(
    tx: pl.DataFrame,
    calibration_end: date | datetime | str | None,
    clv_model: str,
    holdout_fraction: float,
    time_unit: str,
) -> Selection:
    """Score the candidate models on the calibration/holdout split and pick one (see recsys.analytics.selection)."""
    try:
        split = (
            split_at(tx, calibration_end) if calibration_end is not None else split_by_fraction(tx, holdout_fraction)
        )
        frame = holdout_frame(tx, split, time_unit)
    except DataError as exc:
        chosen = DEFAULT_MODEL if clv_model == AUTO else clv_model
        why = "default (no holdout: " if clv_model == AUTO else "forced by --clv-model (no holdout: "
        return Selection(chosen, f"{why}{exc})")
    if clv_model != AUTO:
        return Selection(clv_model, "forced by --clv-model", split, frame, score_models(frame, (clv_model,)))
    scores = score_models(frame, tuple(MODELS))
    best = choose(scores)
    return Selection(best.name, AUTO_REASON, split, frame, scores)


def _holdout(
    tx: pl.DataFrame, selection: Selection, time_unit: str, out_dir: Path, plots: bool
) -> dict[str, Any] | None:
    """The chosen model's holdout check: per-customer errors, by calibration frequency, weekly tracking."""
    best, split, frame = selection.best, selection.split, selection.frame
    if best is None or split is None or frame is None or best.model is None or best.predicted is None:
        return None
    unit = unit_days(time_unit)
    x = frame[P.frequency].to_numpy().astype(float)
    actual = frame[FREQUENCY_HOLDOUT].to_numpy().astype(float)
    rows = weekly_tracking(tx, frame, best.model, split, unit)
    if plots:
        plot_calibration_holdout(frame, best.predicted, out_dir / "plots", label=best.model.label)
        plot_tracking(rows, out_dir / "plots", label=best.model.label)
    return {
        "model": best.name,
        "holdout_start": (split.calibration_end + timedelta(days=1)).date().isoformat(),
        "holdout_end": split.observation_end.date().isoformat(),
        "holdout_length": float(frame[DURATION_HOLDOUT][0]),
        "split_rule": split.rule,
        "customers": frame.height,
        **best.errors,
        "models": {s.name: {k: s.errors.get(k) for k in (METRIC, "aggregate_error_pct")} for s in selection.scores},
        "by_frequency": _by_frequency(x, best.predicted, actual),
        "tracking": rows,
        "tracking_totals": tracking_totals(rows),
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


def _profiles(
    tx: pl.DataFrame,
    catalog: pl.DataFrame | None,
    calibration_end: date | datetime | str | None,
    selection: Selection,
    time_unit: str,
    clv_config: ClvConfig,
) -> AnalyticsResult:
    """Build the profiles with the chosen model, warm-started from its calibration fit. In auto mode, when it cannot
    be fitted on the profile period, the next best by holdout error is used and the selection says so."""
    scored = sorted((s for s in selection.scores if s.model is not None), key=lambda s: s.errors[METRIC])
    names = [selection.chosen] + ([s.name for s in scored if s.name != selection.chosen] if selection.scores else [])
    if len(selection.scores) < 2:
        names = names[:1]  # a forced model, or no holdout: no fallback
    first_error: DataError | None = None
    for name in names:
        model = make_model(name)
        fitted = next((s.model for s in scored if s.name == name), None)
        if fitted is not None:
            model.init = tuple(float(v) for v in fitted.params_)  # warm start from the calibration fit
        config = AnalyticsConfig(time_unit=time_unit, model=name, clv=clv_config)
        try:
            analysis = build_profiles(tx, catalog=catalog, calibration_end=calibration_end, config=config, model=model)
        except DataError as exc:
            first_error = first_error or exc
            continue
        if name != selection.chosen:
            selection.reason += f"; {selection.chosen} failed on the profile period ({first_error}), used {name}"
            selection.chosen = name
        return analysis
    assert first_error is not None
    raise first_error


def _bgnbd_params(analysis: AnalyticsResult) -> dict[str, float] | None:
    # models.json keeps a "bgnbd" entry for its readers (the dashboard's P(alive) curve): the BG/NBD fit on the
    # profile period, whichever model the profiles use
    if analysis.model.name == "bgnbd":
        return analysis.model.to_dict()
    p = analysis.profiles
    try:
        return BetaGeoModel().fit(*(p[c].to_numpy().astype(float) for c in (P.frequency, P.recency, P.T))).to_dict()
    except DataError:
        return None


def _columns(model_label: str, horizon_days: int, as_of: str) -> dict[str, str]:
    # The horizon of each model column, stated in the schema rather than in the column names (readers keep theirs)
    return {
        P.p_alive: f"P(customer still active) as of {as_of}, from {model_label}",
        P.churn_risk: f"1 - p_alive, as of {as_of}",
        P.expected_purchases: f"expected purchase days in the {horizon_days} days after {as_of} ({model_label})",
        P.clv: f"discounted margin of the {horizon_days} days after {as_of} (currency of the input)",
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
    clv_model: str = AUTO,
    holdout_fraction: float = HOLDOUT_FRACTION,
    plots: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Analyse ``result.transactions`` (a ``LoadResult``) and write the analyze artifacts into ``out_dir``.

    Writes ``profiles.parquet``, ``segment_top_items.parquet``, ``models.json``, ``summary.json`` and ``plots/``.
    The CLV model (``clv_model``: auto, bgnbd, mbgnbd or pnbd) is chosen, or with a forced one scored, on a
    calibration/holdout split: at ``calibration_end`` when given, else the last ``holdout_fraction`` of the data's
    span. Profiles are as of ``calibration_end``, or of the last data day (the chosen model refitted on all of it).
    Returns the summary dict. Raises ``DataError``/``ConfigError`` on unusable data or options.
    """
    notify = on_step or (lambda _s: None)
    check_model_name(clv_model)
    out_dir.mkdir(parents=True, exist_ok=True)
    tx: pl.DataFrame = result.transactions
    catalog = getattr(result, "catalog", None)
    clv_config = ClvConfig(horizon_days=horizon_days, margin=margin, annual_discount=annual_discount)
    notify(STEPS[0])
    selection = _select(tx, calibration_end, clv_model, holdout_fraction, time_unit)
    notify(STEPS[1])
    analysis = _profiles(tx, catalog, calibration_end, selection, time_unit, clv_config)
    profiles = analysis.profiles
    notify(STEPS[2])
    holdout = _holdout(tx, selection, time_unit, out_dir, plots)
    notify(STEPS[3])
    cal_tx = tx.filter(pl.col(Columns.timestamp) < analysis.as_of + timedelta(days=1))
    top_items = segment_top_items(cal_tx, profiles)
    notify(STEPS[4])
    if plots:
        plot_p_alive_matrix(
            analysis.model,
            float(profiles[P.T].max()),
            int(min(profiles[P.frequency].quantile(0.99) or 1, 50)),
            out_dir / "plots",
        )
        plot_clv_distribution(profiles[P.clv].to_numpy(), out_dir / "plots")
    notify(STEPS[5])
    as_of = analysis.as_of.date().isoformat()
    models = {
        "clv_model": {"name": analysis.model.name, "label": analysis.model.label, "params": analysis.model.to_dict()},
        "model_selection": selection.to_dict(unit_days(time_unit)),
        "bgnbd": _bgnbd_params(analysis),
        "gamma_gamma": analysis.gamma_gamma.to_dict() if analysis.gamma_gamma else None,
        "time_unit": time_unit,
        "as_of": analysis.as_of.isoformat(),
        "calibration_end": as_of,
        "clv": {
            "horizon_days": horizon_days,
            "margin": margin,
            "annual_discount": annual_discount,
            "method": f"monthly discounting of {analysis.model.label} expected purchases x Gamma-Gamma expected "
            "spend x margin",
        },
        "columns": _columns(analysis.model.label, horizon_days, as_of),
    }

    def counts(col: str) -> dict[Any, int]:
        return dict(profiles[col].value_counts(sort=True).iter_rows())

    lifecycle = counts(P.lifecycle)
    one_time = profiles.filter(pl.col(P.frequency) == 0)
    summary: dict[str, Any] = {
        "customers": profiles.height,
        "as_of": as_of,
        "clv_model": analysis.model.name,
        "segments": counts(P.segment),
        "lifecycle": {stage: int(lifecycle.get(stage, 0)) for stage in STAGES},
        "value_tiers": counts(P.value_tier),
        "clv": _distribution(profiles[P.clv].to_numpy()),
        "p_alive_mean": float(profiles[P.p_alive].mean()),
        "one_time_buyers": {
            "customers": one_time.height,
            "churn_risk_at_least_0_5": int(one_time.filter(pl.col(P.churn_risk) >= 0.5).height),
        },
        "spend_frequency_correlation": models["gamma_gamma"]["correlation"] if models["gamma_gamma"] else None,
        "holdout": holdout,
        "segment_top_items": top_items.height,
    }
    profiles.write_parquet(out_dir / "profiles.parquet")
    top_items.write_parquet(out_dir / "segment_top_items.parquet")
    (out_dir / "models.json").write_text(json.dumps(models, indent=2, default=str))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
