"""Plots of the analytics outputs (matplotlib with the Agg backend, imported lazily so the library stays light)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.analytics.btyd import PurchaseModel
from recsys.analytics.summary import FREQUENCY_HOLDOUT
from recsys.columns import ProfileColumns as P


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, name: str, svg: bool) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png"] + ([out_dir / f"{name}.svg"] if svg else [])
    for path in paths:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return paths


def plot_p_alive_matrix(
    model: PurchaseModel, T: float, max_frequency: int, out_dir: Path, *, svg: bool = True
) -> list[Path]:
    """Write the P(alive) heat map over frequency × recency for a customer observed for ``T``; return the paths."""
    plt = _pyplot()
    freq = np.arange(max(max_frequency, 1) + 1)
    rec = np.linspace(0, T, 60)
    grid = model.p_alive(freq[:, None], rec[None, :], T)
    fig, ax = plt.subplots(figsize=(7, 5))
    im = ax.imshow(grid, origin="lower", aspect="auto", extent=(0, T, 0, freq[-1]), vmin=0, vmax=1, cmap="viridis")
    ax.set(
        xlabel="recency (time of last purchase)",
        ylabel="frequency (repeat purchases)",
        title=f"P(alive) by frequency and recency ({model.label})",
    )
    fig.colorbar(im, ax=ax, label="P(alive)")
    paths = _save(fig, out_dir, "p_alive_matrix", svg)
    plt.close(fig)
    return paths


def plot_calibration_holdout(
    summary: pl.DataFrame,
    predicted: np.ndarray,
    out_dir: Path,
    *,
    label: str = "BG/NBD",
    max_frequency: int = 7,
    svg: bool = True,
) -> list[Path]:
    """Write mean actual vs predicted holdout purchases by calibration frequency; return the paths."""
    plt = _pyplot()
    frame = summary.with_columns(pl.Series("_pred", predicted), pl.col(P.frequency).clip(0, max_frequency).alias("_f"))
    agg = (
        frame.group_by("_f")
        .agg(pl.col(FREQUENCY_HOLDOUT).mean().alias("actual"), pl.col("_pred").mean().alias("predicted"))
        .sort("_f")
    )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(agg["_f"], agg["actual"], "o-", label="actual")
    ax.plot(agg["_f"], agg["predicted"], "s--", label=f"{label} prediction")
    ax.set(
        xlabel=f"purchases in calibration (repeat; {max_frequency} = {max_frequency}+)",
        ylabel="mean purchases in holdout",
        title="Calibration vs holdout purchases",
    )
    ax.legend()
    paths = _save(fig, out_dir, "calibration_holdout", svg)
    plt.close(fig)
    return paths


def plot_clv_distribution(clv: np.ndarray, out_dir: Path, *, svg: bool = True) -> list[Path]:
    """Write a histogram of CLV (log scale on counts); return the paths."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    upper = float(np.quantile(clv, 0.99)) if len(clv) else 1.0
    ax.hist(np.clip(clv, 0, upper), bins=50, log=True)
    ax.set(xlabel="CLV (clipped at the 99th percentile)", ylabel="customers", title="CLV distribution")
    paths = _save(fig, out_dir, "clv_distribution", svg)
    plt.close(fig)
    return paths


def plot_tracking(rows: list[dict[str, Any]], out_dir: Path, *, label: str, svg: bool = True) -> list[Path]:
    """Write weekly and cumulative repeat purchases, actual vs predicted, with the calibration end marked (the
    tracking plots of the BTYD papers); ``rows`` from :func:`recsys.analytics.tracking.weekly_tracking`."""
    plt = _pyplot()
    k = np.arange(1, len(rows) + 1)
    hold = np.array([r["phase"] == "holdout" for r in rows])
    cal_end = int((~hold).sum()) + 0.5
    fig, (weekly, cumulative) = plt.subplots(1, 2, figsize=(12, 4.5))
    weekly.plot(k, [r["actual"] for r in rows], "-", color="black", label="actual")
    weekly.plot(k, [r["predicted"] for r in rows], "--", color="tab:blue", label=f"{label} (unconditional)")
    if hold.any():
        cond = [r["predicted_conditional"] for r in rows if r["phase"] == "holdout"]
        weekly.plot(k[hold], cond, ":", color="tab:red", label=f"{label} (conditional on calibration)")
    cumulative.plot(k, [r["actual_cumulative"] for r in rows], "-", color="black", label="actual")
    cumulative.plot(k, [r["predicted_cumulative"] for r in rows], "--", color="tab:blue", label=label)
    for ax, title in ((weekly, "Repeat purchases per week"), (cumulative, "Cumulative repeat purchases")):
        ax.axvline(cal_end, color="grey", linestyle="-.", linewidth=1)
        ax.set(xlabel="week (calibration | holdout)", ylabel="repeat purchase days", title=title)
        ax.legend()
    paths = _save(fig, out_dir, "holdout_tracking", svg)
    plt.close(fig)
    return paths
