"""Experiments: deterministic arm assignment by hash, and the per-arm report with lift and 95 % CIs.

Assignment hashes ``salt:customer_id`` with BLAKE2b (stable across processes, machines and library
versions, unlike polars' or Python's hash), maps it to [0, 1) and cuts that interval by arm weights.
Offline decide and the live service therefore agree on every customer's arm without storing it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from recsys.columns import Columns
from recsys.exceptions import ConfigError

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")  # \Z: "$" would accept a final newline
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Arm:
    """One arm: ``holdout`` arms receive no offer of the experiment."""

    name: str
    weight: float
    holdout: bool = False


@dataclass(frozen=True)
class Experiment:
    """An experiment over some offers (``offers`` empty = every offer)."""

    id: str
    salt: str
    arms: tuple[Arm, ...]
    offers: tuple[str, ...] = ()
    _cuts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        total = sum(arm.weight for arm in self.arms)
        cuts = np.cumsum([arm.weight / total for arm in self.arms]).tolist()
        cuts[-1] = 1.0
        object.__setattr__(self, "_cuts", tuple(cuts))

    def covers(self, offer_id: str) -> bool:
        """Return whether the experiment applies to ``offer_id``."""
        return not self.offers or offer_id in self.offers

    def holdout_arms(self) -> set[str]:
        """Names of the arms that receive no offer."""
        return {arm.name for arm in self.arms if arm.holdout}

    def arm_of(self, customer_id: str) -> str:
        """Return the arm of one customer (deterministic)."""
        position = _unit(self.salt, customer_id)
        index = int(np.searchsorted(np.asarray(self._cuts), position, side="right"))
        return self.arms[min(index, len(self.arms) - 1)].name

    def assign(self, customer_ids: Iterable[str]) -> pl.Series:
        """Return the arm of every customer id, in order (a String series named ``arm``)."""
        salt = self.salt
        positions = np.fromiter((_unit(salt, cid) for cid in customer_ids), dtype=np.float64)
        index = np.minimum(np.searchsorted(np.asarray(self._cuts), positions, side="right"), len(self.arms) - 1)
        names = np.asarray([arm.name for arm in self.arms], dtype=object)
        return pl.Series("arm", names[index].tolist(), dtype=pl.String)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (as written to ``experiments.json``)."""
        return {"id": self.id, "salt": self.salt, "offers": list(self.offers), "arms": [asdict(a) for a in self.arms]}


def _unit(salt: str, customer_id: str) -> float:
    digest = hashlib.blake2b(f"{salt}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def experiment_from_dict(data: Mapping[str, Any], where: str) -> Experiment:
    """Validate one experiment table; raises ``ConfigError`` naming ``where`` and the field."""
    exp_id = data.get("id")
    if not isinstance(exp_id, str) or not _ID_RE.match(exp_id):
        raise ConfigError(f"{where}: experiment 'id' must be 1-64 letters, digits or _.:-; got {exp_id!r}")
    where = f"{where}: experiment {exp_id!r}"
    unknown = set(data) - {"id", "salt", "arms", "offers"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: id, salt, arms, offers")
    salt = data.get("salt", exp_id)
    if not isinstance(salt, str) or not salt:
        raise ConfigError(f"{where}: 'salt' must be a non-empty string, got {salt!r}")
    offers = data.get("offers", [])
    if not isinstance(offers, list) or not all(isinstance(o, str) for o in offers):
        raise ConfigError(f"{where}: 'offers' must be a list of offer ids, got {offers!r}")
    raw_arms = data.get("arms")
    if not isinstance(raw_arms, list) or len(raw_arms) < 2:
        raise ConfigError(
            f"{where}: 'arms' must list at least two arms, e.g. [{{name='nba', weight=0.9}}, "
            f"{{name='holdout', weight=0.1, holdout=true}}]"
        )
    arms = []
    for i, raw in enumerate(raw_arms):
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: arms[{i}] must be a table with name, weight, holdout")
        name, weight, holdout = raw.get("name"), raw.get("weight"), raw.get("holdout", False)
        if not isinstance(name, str) or not _ID_RE.match(name):
            raise ConfigError(f"{where}: arms[{i}].name must be a short identifier, got {name!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1_000_000:
            raise ConfigError(f"{where}: arms[{i}].weight must be a positive number, got {weight!r}")
        if not isinstance(holdout, bool):
            raise ConfigError(f"{where}: arms[{i}].holdout must be true or false, got {holdout!r}")
        arms.append(Arm(name, float(weight), holdout))
    if len({a.name for a in arms}) != len(arms):
        raise ConfigError(f"{where}: arm names must be unique")
    return Experiment(exp_id, salt, tuple(arms), tuple(offers))


@dataclass(frozen=True)
class ArmResult:
    """Outcome of one arm; lifts are against the control arm (None for the control itself)."""

    arm: str
    customers: int
    conversions: int
    conversion_rate: float
    revenue: float
    revenue_per_customer: float
    conversion_diff: float | None = None
    conversion_diff_ci: tuple[float, float] | None = None
    conversion_lift: float | None = None
    conversion_lift_ci: tuple[float, float] | None = None
    revenue_diff: float | None = None
    revenue_diff_ci: tuple[float, float] | None = None
    revenue_lift: float | None = None


def report(assignments: pl.DataFrame, outcomes: pl.DataFrame, control: str) -> list[ArmResult]:
    """Per-arm conversion and revenue, with lift vs ``control`` and normal-approximation 95 % CIs.

    ``assignments``: ``customer_id``, ``arm`` (everyone assigned: intention to treat).
    ``outcomes``: ``customer_id``, ``converted`` (bool), ``revenue`` (float); customers absent did not convert.
    Conversion lift CI: delta method on log(p1/p0); revenue: Welch difference of means.
    Raises ``ConfigError`` if ``control`` is not an arm.
    """
    cid = Columns.customer_id
    joined = assignments.join(outcomes, on=cid, how="left").with_columns(
        pl.col("converted").fill_null(False), pl.col("revenue").fill_null(0.0)
    )
    stats = {
        row["arm"]: row
        for row in joined.group_by("arm")
        .agg(
            pl.len().alias("n"),
            pl.col("converted").sum().alias("k"),
            pl.col("revenue").sum().alias("rev"),
            pl.col("revenue").var().fill_null(0.0).alias("var"),
        )
        .iter_rows(named=True)
    }
    if control not in stats:
        raise ConfigError(f"control arm {control!r} has no customers; arms present: {sorted(stats)}")
    c = stats[control]
    p0, m0 = c["k"] / c["n"], c["rev"] / c["n"]
    results = []
    for arm in sorted(stats):
        s = stats[arm]
        n, k = s["n"], s["k"]
        p1, m1 = k / n, s["rev"] / n
        base = ArmResult(arm, n, k, p1, s["rev"], m1)
        if arm == control:
            results.append(base)
            continue
        se = math.sqrt(p1 * (1 - p1) / n + p0 * (1 - p0) / c["n"])
        diff = p1 - p0
        lift = lift_ci = None
        if p0 > 0 and p1 > 0:
            lift = p1 / p0 - 1
            se_log = math.sqrt((1 - p1) / (n * p1) + (1 - p0) / (c["n"] * p0))
            lift_ci = (math.exp(math.log(p1 / p0) - Z95 * se_log) - 1, math.exp(math.log(p1 / p0) + Z95 * se_log) - 1)
        se_rev = math.sqrt(s["var"] / n + c["var"] / c["n"])
        results.append(
            ArmResult(
                arm,
                n,
                k,
                p1,
                s["rev"],
                m1,
                conversion_diff=diff,
                conversion_diff_ci=(diff - Z95 * se, diff + Z95 * se),
                conversion_lift=lift,
                conversion_lift_ci=lift_ci,
                revenue_diff=m1 - m0,
                revenue_diff_ci=(m1 - m0 - Z95 * se_rev, m1 - m0 + Z95 * se_rev),
                revenue_lift=(m1 / m0 - 1) if m0 > 0 else None,
            )
        )
    return results
