"""The propensity fit at a cut, and the choice of its settings on the training period only (forward chaining).

**A fit at a cut** (:func:`fit_at_cut`) knows only what was known before the cut:

* labels are taken as they stood at the cut (``response_history.labels_at``): a redemption at or after the cut
  does not label a training exposure;
* an exposure whose attribution window is still open at the cut keeps its censored label for the *learner* when
  at least :data:`MIN_OBSERVED_SHARE` of its window was seen (a ranking survives mild censoring; the calibration
  below corrects its level) and is dropped when less was seen (too early to say anything);
* the *calibration* is fitted on a time-later fold of whole decision moments, by default the
  :data:`CALIBRATION_SHARE` latest exposures whose window had closed by the cut (``final``: their labels are
  final, so the probabilities are not pulled down by redemptions still to come). The learner sees every other
  kept training exposure.

**The choice** (:func:`choose_settings`): the inverse L2 strength ``c`` (logistic learner), the calibration
(Platt or isotonic), the calibration fold's rule (``final`` labels only, or the ``recent`` kept rows), its share
(:data:`CALIBRATION_SHARES`) and, when several are offered, the feature set (``response_features.FEATURE_SETS``)
are chosen by forward chaining inside the training period. Inner cuts are the moments at which
:data:`INNER_POINTS` of the training exposures with final labels begin (a point falling on a moment already taken
moves to the next one); at each inner cut a fit is made exactly as above (labels as of the inner cut), and it
predicts the exposures with final labels from that cut to the next. The setting with the lowest log loss over all
inner predictions (a proper scoring rule: it rewards ranking and calibration together) is taken. The validation
period is not read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.special import expit
from sklearn.metrics import log_loss, roc_auc_score

from recsys.exceptions import DataError
from recsys.nba.calibration import calibration_table
from recsys.nba.propensity_model import CALIBRATIONS, PropensityModel
from recsys.nba.response_history import labels_at

MIN_OBSERVED_SHARE = 0.5
CALIBRATION_SHARE = 0.2
CALIBRATION_SHARES = (0.2, 0.5)  # candidates: a fold close to what is predicted, or a larger, steadier one
INNER_POINTS = (0.5, 0.65, 0.8)
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
DEFAULT_C = 0.05
FOLD_RULES = ("final", "recent")
INNER_MAX_ROWS = 20_000  # inner fits on a seeded sample beyond this (the choice, not the final fit)


def design(frame: pl.DataFrame, features: tuple[str, ...] | list[str]) -> np.ndarray:
    """Return the float matrix of ``features`` (missing columns all NaN), in that order."""
    return np.column_stack(
        [
            frame.get_column(f).cast(pl.Float64, strict=False).to_numpy()
            if f in frame.columns
            else np.full(frame.height, np.nan)
            for f in features
        ]
    ).astype(np.float64)


def calibration_fold(starts: pl.Series, share: float = CALIBRATION_SHARE) -> np.ndarray:
    """Return the mask of the time-later calibration fold: the rows of the latest decision moments (whole moments,
    never split by an arbitrary id order), as close to ``share`` of the rows as whole moments allow.

    The fold starts at the moment holding the ``1 - share`` point or at the next one, whichever gives the size
    nearer ``share`` (one big campaign at that point must not make the fold half of the training rows).
    """
    ordered = starts.sort()
    n, wanted = len(ordered), share * len(ordered)
    moment = ordered[min(int(n * (1 - share)), n - 1)]
    fold = (starts >= moment).to_numpy()
    later = (starts > moment).to_numpy()
    if later.any() and abs(later.sum() - wanted) < abs(fold.sum() - wanted):
        fold = later
    if fold.all():  # a single decision moment: fall back to the later rows in the given order
        fold = np.arange(n) >= int(n * (1 - share))
    return np.asarray(fold, dtype=bool)


@dataclass(frozen=True)
class CutRows:
    """Training rows as known at a cut: the kept rows (labels at the cut), and which of them calibrate."""

    rows: pl.DataFrame
    fold: np.ndarray
    censored: int  # kept rows whose window was still open at the cut
    dropped: int  # rows dropped: less than MIN_OBSERVED_SHARE of their window seen


def rows_at_cut(
    train: pl.DataFrame, cut: dt.datetime, fold_rule: str = "final", share: float = CALIBRATION_SHARE
) -> CutRows:
    """Return the training rows (``start < cut``) labelled as of ``cut`` and the calibration fold among them:
    the latest rows with final labels (``fold_rule="final"``) or the latest kept rows, censored ones included
    (``"recent"``: closer in time to what is predicted, but its labels may still be incomplete).

    Raises ``DataError`` when no training exposure's window closed before the cut (nothing to calibrate on).
    """
    at = labels_at(train.filter(pl.col("start") < cut), cut)
    kept = at.filter(pl.col("complete") | (pl.col("observed_share") >= MIN_OBSERVED_SHARE))
    complete = kept.get_column("complete").to_numpy()
    if not complete.any():
        raise DataError(
            f"no training exposure's attribution window closed before {cut:%Y-%m-%d}: the calibration needs final "
            "labels; choose a later cut (--valid-from) or a shorter --window-days"
        )
    if fold_rule not in FOLD_RULES:
        raise DataError(f"fold_rule must be one of {FOLD_RULES}, got {fold_rule!r}")
    if fold_rule == "recent":
        fold = calibration_fold(kept.get_column("start"), share)
    else:
        fold = np.zeros(kept.height, dtype=bool)
        fold[complete] = calibration_fold(kept.get_column("start").filter(pl.Series(complete)), share)
    return CutRows(kept, fold, int((~complete).sum()), at.height - kept.height)


def _sample(cut_rows: CutRows, limit: int) -> CutRows:
    if cut_rows.rows.height <= limit:
        return cut_rows
    keep = np.sort(np.random.default_rng(0).choice(cut_rows.rows.height, limit, replace=False))
    return CutRows(cut_rows.rows[keep], cut_rows.fold[keep], cut_rows.censored, cut_rows.dropped)


def fit_at_cut(
    cut_rows: CutRows,
    features: tuple[str, ...],
    log_features: tuple[str, ...],
    learner: str,
    c: float,
    calibration: str,
) -> PropensityModel:
    """Return the model fitted on ``cut_rows``: the learner outside the fold, the calibration on it."""
    y = cut_rows.rows.get_column("accepted").to_numpy().astype(np.float64)
    x = design(cut_rows.rows, features)
    return PropensityModel(features, log_features, learner, c=c, calibration=calibration).fit(x, y, cut_rows.fold)


def _both_calibrations(model: PropensityModel, x: np.ndarray) -> dict[str, np.ndarray]:
    raw = model.raw_score(x)
    a, b = model.platt_
    out = {"platt": np.asarray(expit(a * raw + b), dtype=np.float64)}
    if model.isotonic_ is not None:
        out["isotonic"] = np.interp(raw, *model.isotonic_)
    return out


def inner_cuts(train: pl.DataFrame, cut: dt.datetime) -> list[dt.datetime]:
    """Return the inner cuts: the moments at which :data:`INNER_POINTS` of the final-label rows begin.

    Points that fall on a moment already taken (one large campaign can hold all of them) move on to the next
    later moment, so that there are as many inner folds as points while distinct moments last.
    """
    final = labels_at(train, cut).filter(pl.col("complete")).get_column("start").sort()
    if final.is_empty():
        return []
    moments = final.unique().sort().to_list()
    picked: list[dt.datetime] = []
    for q in INNER_POINTS:
        at = moments.index(final[min(int(len(final) * q), len(final) - 1)])
        while moments[at] in picked and at + 1 < len(moments):
            at += 1
        picked.append(moments[at])
    return sorted(m for m in set(picked) if m > moments[0])


def _inner_candidates(
    train: pl.DataFrame,
    cut: dt.datetime,
    sets: dict[str, tuple[str, ...]],
    rules: list[tuple[str, float]],
    cs: tuple[float, ...],
    calibrations: tuple[str, ...],
    log_features: tuple[str, ...],
    learner: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return every candidate's inner log loss, AUC and ECE, and the inner folds that were scored."""
    final = labels_at(train, cut).filter(pl.col("complete"))
    cuts = inner_cuts(train, cut)
    keys = [(name, rule, c, k) for name in sets for rule in rules for c in cs for k in calibrations]
    predictions: dict[tuple[str, tuple[str, float], float, str], list[np.ndarray]] = {key: [] for key in keys}
    folds, outcomes = [], []
    for i, inner in enumerate(cuts):
        upto = cuts[i + 1] if i + 1 < len(cuts) else cut
        target = final.filter((pl.col("start") >= inner) & (pl.col("start") < upto))
        y = target.get_column("accepted").to_numpy().astype(np.float64)
        if target.is_empty() or len(np.unique(y)) < 2:
            continue
        try:
            fitted = {}
            for rule in rules:
                rows = _sample(rows_at_cut(train, inner, *rule), INNER_MAX_ROWS)
                for name, used in sets.items():
                    for c in cs:
                        fitted[(name, rule, c)] = fit_at_cut(rows, used, log_features, learner, c, "isotonic")
        except DataError:  # too little before this inner cut to fit on: the fold is skipped
            continue
        x = {name: design(target, used) for name, used in sets.items()}
        for (name, rule, c), model in fitted.items():
            probs = _both_calibrations(model, x[name])
            for k in calibrations:
                predictions[(name, rule, c, k)].append(probs[k])
        outcomes.append(y)
        folds.append(
            {
                "from": inner.isoformat(),
                "to": upto.isoformat(),
                "fit_rows": rows.rows.height,
                "scored_rows": target.height,
                "scored_accepted": int(y.sum()),
            }
        )
    if not folds:
        return [], []
    y_all = np.concatenate(outcomes)
    candidates = []
    for (name, rule, c, k), parts in predictions.items():
        p = np.clip(np.concatenate(parts), 1e-6, 1 - 1e-6)
        candidates.append(
            {
                "feature_set": name,
                "fold_rule": rule[0],
                "calibration_share": rule[1],
                "c": c,
                "calibration": k,
                "log_loss": round(float(log_loss(y_all, p, labels=[0.0, 1.0])), 5),
                "auc": round(float(roc_auc_score(y_all, p)), 4),
                "ece": round(calibration_table(p, y_all)["ece"], 4),
            }
        )
    return candidates, folds


def choose_settings(
    train: pl.DataFrame,
    cut: dt.datetime,
    features: tuple[str, ...],
    log_features: tuple[str, ...],
    learner: str,
    calibration: str | None = None,
    feature_sets: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """Return ``{"c", "calibration", "fold_rule", "calibration_share", "feature_set", "features", "method",
    "folds", "candidates"}`` chosen on ``train`` (``start < cut``) only.

    ``calibration`` given fixes it (``c`` and the fold rule are still chosen). ``feature_sets`` (name → features)
    are candidates too; without them ``features`` is the one set (named ``given``). The full grid is searched
    with the first set; each other set is then scored with the settings that grid chose (one more inner fit per
    inner cut and set). Without a usable inner fold the defaults (and the first feature set) are kept and
    ``method`` says so.
    """
    sets = feature_sets or {"given": features}
    first = next(iter(sets))
    calibrations = (calibration,) if calibration else CALIBRATIONS
    cs = C_GRID if learner == "logistic" else (DEFAULT_C,)
    rules = [(rule, share) for rule in FOLD_RULES for share in CALIBRATION_SHARES]
    args = (log_features, learner)
    candidates, folds = _inner_candidates(train, cut, {first: sets[first]}, rules, cs, calibrations, *args)
    if not folds:
        return {
            "c": DEFAULT_C,
            "calibration": calibration or "platt",
            "fold_rule": "final",
            "calibration_share": CALIBRATION_SHARE,
            "feature_set": first,
            "features": list(sets[first]),
            "method": "defaults (no usable inner fold)",
            "folds": [],
            "candidates": [],
        }
    best = min(candidates, key=lambda r: (r["log_loss"], r["c"]))
    others = {name: used for name, used in sets.items() if name != first}
    if others:
        rule = (best["fold_rule"], best["calibration_share"])
        more, _ = _inner_candidates(train, cut, others, [rule], (best["c"],), (best["calibration"],), *args)
        candidates += more
        order = list(sets)  # ties go to the first feature set offered
        best = min([best, *more], key=lambda r: (r["log_loss"], order.index(r["feature_set"])))
    return {
        "feature_set": best["feature_set"],
        "features": list(sets[best["feature_set"]]),
        "c": best["c"],
        "calibration": best["calibration"],
        "fold_rule": best["fold_rule"],
        "calibration_share": best["calibration_share"],
        "method": f"forward chaining on the training period, {len(folds)} inner fold(s), lowest log loss",
        "folds": folds,
        "candidates": candidates,
    }
