"""Tier movements per month, derived on the read side by replaying each customer's ledger statement.

The ledger records earns, reversals, grants, redemptions and expiries, but not tier changes. The tier rules are
deterministic, so the changes can be replayed from the statement with the same rules the ledger script applies:

- **upgrade**: after an earn, the tier rises to the best one whose threshold the points earned in the rolling
  ``window_months`` calendar months (UTC) ending with the order's month reach (``em:<YYYYMM>`` in the account);
  a reversal takes its points back out of the month its order was earned in;
- **downgrade**: at each period end (the last second of every calendar month, when ``centric loyalty expire``
  reviews tiers) the tier falls to the best one that any window ending in the last ``grace_months`` months qualifies
  for, never above the tier held.

Upgrades are exact. Downgrades are what the period-end reviews give under the program; an account whose reviews
were not run keeps its higher tier, so the replayed tier of today can be lower than the account's (the dashboard
shows both counts side by side).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recsys.loyalty.earning import add_months, month_label, months_window


@dataclass(frozen=True)
class TierRules:
    """What the replay needs of a program: tier thresholds (lowest first), window and grace in months."""

    thresholds: tuple[int, ...]
    window_months: int
    grace_months: int

    @classmethod
    def of(cls, program: Any) -> TierRules:
        """Return the rules of a ``recsys.loyalty.program.Program``."""
        return cls(tuple(t.threshold for t in program.tiers), program.window_months, program.grace_months)


@dataclass(frozen=True)
class TierMove:
    """One tier change: when (epoch seconds), from which tier to which (positions, 0 = lowest)."""

    at: int
    before: int
    after: int

    @property
    def month(self) -> str:
        """The ``YYYY-MM`` month (UTC) of the change."""
        return datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m")


@dataclass
class TierReplay:
    """The replayed history of one customer: every move, and the tier at ``until``."""

    moves: list[TierMove] = field(default_factory=list)
    tier: int = 0


def _month_start(at: int) -> datetime:
    moment = datetime.fromtimestamp(at, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _qualified(earned: Mapping[str, int], window: Sequence[str], thresholds: Sequence[int]) -> int:
    total = sum(earned.get(m, 0) for m in window)
    best = 0
    for i, threshold in enumerate(thresholds):
        if total >= threshold:
            best = i
    return best


def replay_customer(entries: Iterable[Mapping[str, Any]], rules: TierRules, until: datetime) -> TierReplay:
    """Replay one customer's ledger ``entries`` (in ledger order) up to ``until``; return its tier moves.

    Entries are the ledger's JSON objects (``type``, ``at`` epoch seconds, ``points``, ``source``); other types than
    ``earn`` and ``reverse`` do not move tiers. Period-end reviews run at the last second of each month that ends
    after the first entry and not after ``until``.
    """
    out = TierReplay()
    earned: dict[str, int] = {}
    order_month: dict[str, str] = {}
    review_due: datetime | None = None  # the start of the next month whose eve holds a review

    def review(moment: datetime) -> None:
        windows = [months_window(add_months(moment, -k), rules.window_months) for k in range(rules.grace_months + 1)]
        keep = min(max(_qualified(earned, w, rules.thresholds) for w in windows), out.tier)
        if keep != out.tier:
            out.moves.append(TierMove(int(moment.timestamp()), out.tier, keep))
            out.tier = keep

    def reviews_until(at: int) -> None:
        nonlocal review_due
        while review_due is not None and review_due.timestamp() <= at:
            review(datetime.fromtimestamp(review_due.timestamp() - 1, UTC))
            review_due = add_months(review_due, 1)

    for entry in entries:
        at = int(entry.get("at", 0))
        if review_due is None:
            review_due = add_months(_month_start(at), 1)
        reviews_until(at)
        kind = entry.get("type")
        if kind == "earn":
            moment = datetime.fromtimestamp(at, UTC)
            month = month_label(moment)
            earned[month] = earned.get(month, 0) + int(entry.get("points", 0))
            order_month[str(entry.get("source", ""))] = month
            best = _qualified(earned, months_window(moment, rules.window_months), rules.thresholds)
            if best > out.tier:
                out.moves.append(TierMove(at, out.tier, best))
                out.tier = best
        elif kind == "reverse":
            month_of = order_month.get(str(entry.get("source", "")))
            if month_of is not None:
                earned[month_of] = earned.get(month_of, 0) - int(entry.get("points", 0))
    reviews_until(int(until.timestamp()))
    return out


@dataclass
class TierMovements:
    """Movements of many customers, counted per month: upgrades, downgrades and each ``(from, to)`` pair."""

    tiers: int
    months: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)
    current: list[int] = field(default_factory=list)  # customers per replayed tier at ``until``

    def __post_init__(self) -> None:
        self.current = [0] * self.tiers

    def add(self, replay: TierReplay) -> None:
        """Count one customer's replay."""
        for move in replay.moves:
            pairs = self.months.setdefault(move.month, {})
            pairs[(move.before, move.after)] = pairs.get((move.before, move.after), 0) + 1
        self.current[min(replay.tier, self.tiers - 1)] += 1

    def table(self, names: Sequence[str], last: int | None = None) -> list[dict[str, Any]]:
        """Return ``[{"month", "upgrades", "downgrades", "moves": [{"from", "to", "customers"}]}]``, oldest first
        (the last ``last`` months with a move)."""
        rows = []
        for month in sorted(self.months):
            pairs = self.months[month]
            rows.append(
                {
                    "month": month,
                    "upgrades": sum(n for (a, b), n in pairs.items() if b > a),
                    "downgrades": sum(n for (a, b), n in pairs.items() if b < a),
                    "moves": [
                        {"from": names[a], "to": names[b], "customers": n} for (a, b), n in sorted(pairs.items())
                    ],
                }
            )
        return rows[-last:] if last else rows
