"""The loyalty program: a TOML file, validated on load with errors that name file, field and value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from recsys.config_files import read_toml
from recsys.exceptions import ConfigError

ROUNDING = ("floor", "round", "ceil")


REPEATS = ("never", "yearly")


def _shift_years(moment: datetime, years: int) -> datetime:
    """``moment`` moved by whole calendar years; 29 February becomes 28 February in a common year."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


@dataclass(frozen=True)
class Campaign:
    """A bonus window: orders placed in ``[start, end]`` earn ``multiplier`` times the points.

    ``repeat = "yearly"`` makes the window recur every year on the same calendar dates (UTC), so an example
    program such as "holiday double points in December" stays live without editing its dates.
    """

    name: str
    start: datetime
    end: datetime
    multiplier: Decimal
    repeat: str = "never"

    def active(self, now: datetime) -> bool:
        """Return whether an order placed at ``now`` (aware UTC) falls in this campaign's window."""
        if self.repeat == "never":
            return self.start <= now <= self.end
        # the occurrence that started in now's year, or the one before (a window may cross New Year)
        for years in (now.year - self.start.year, now.year - self.start.year - 1):
            if years < 0:
                continue
            if _shift_years(self.start, years) <= now <= _shift_years(self.end, years):
                return True
        return False


@dataclass(frozen=True)
class Tier:
    """A tier reached when points earned in the rolling window reach ``threshold``."""

    name: str
    threshold: int
    multiplier: Decimal
    benefits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reward:
    """A reward: ``cost`` points each, initial ``stock``, allowed ``tiers`` (empty = all), validity window."""

    id: str
    name: str
    cost: int
    stock: int
    tiers: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def available(self, tier: str, now: datetime) -> bool:
        """Return whether a customer in ``tier`` may redeem this reward at ``now``."""
        if self.tiers and tier not in self.tiers:
            return False
        if self.valid_from and now < self.valid_from:
            return False
        return not (self.valid_to and now > self.valid_to)


@dataclass(frozen=True)
class Program:
    """A validated loyalty program (see ``examples/loyalty.toml``)."""

    name: str
    points_per_unit: Decimal
    rounding: str
    cap_per_order: int
    expiry_months: int
    point_value_cents: Decimal
    category_multipliers: dict[str, Decimal]
    first_purchase_bonus: int
    campaigns: tuple[Campaign, ...]
    tiers: tuple[Tier, ...]
    window_months: int
    grace_months: int
    rewards: dict[str, Reward] = field(default_factory=dict)

    def tier_index(self, name: str) -> int:
        """Return the position of tier ``name`` (0 = lowest); unknown names count as the lowest."""
        for i, tier in enumerate(self.tiers):
            if tier.name == name:
                return i
        return 0

    def tier_number(self, stored: int) -> int:
        """Return the position of the tier the ledger stored as number ``stored`` (0 = lowest): the highest tier when
        the program now has fewer tiers than when the number was stored."""
        return min(stored, len(self.tiers) - 1)

    def tier_at(self, stored: int) -> Tier:
        """Return the tier the ledger stored as number ``stored`` (see ``tier_number``)."""
        return self.tiers[self.tier_number(stored)]


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, name: str, value: Any, why: str) -> ConfigError:
        return ConfigError(f"{self.path}: field '{name}' = {value!r}: {why}")

    def get(
        self, table: dict[str, Any], name: str, kind: type | tuple[type, ...], prefix: str, default: Any = ...
    ) -> Any:
        full = f"{prefix}{name}"
        if name not in table:
            if default is ...:
                raise ConfigError(f"{self.path}: required field '{full}' is missing")
            return default
        value = table[name]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.fail(full, value, f"expected {getattr(kind, '__name__', kind)}")
        return value

    def number(self, table: dict[str, Any], name: str, prefix: str, default: Any = ..., minimum: float = 0) -> Decimal:
        value = self.get(table, name, (int, float, str), prefix, default)
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(prefix + name, value, "expected a number") from None
        if not number.is_finite():
            raise self.fail(prefix + name, value, "expected a finite number")
        if number < minimum:
            raise self.fail(prefix + name, value, f"must be >= {minimum}")
        return number

    def integer(self, table: dict[str, Any], name: str, prefix: str, default: Any = ..., minimum: int = 0) -> int:
        value = self.get(table, name, int, prefix, default)
        if value < minimum:
            raise self.fail(prefix + name, value, f"must be >= {minimum}")
        return int(value)

    def time(self, table: dict[str, Any], name: str, prefix: str, default: Any = ...) -> datetime | None:
        value = self.get(table, name, datetime, prefix, default)
        if value is None:
            return None
        if value.tzinfo is None:
            raise self.fail(prefix + name, value, "needs a UTC offset, e.g. 2026-01-01T00:00:00Z")
        return value.astimezone(UTC)


def load_program(path: Path | str) -> Program:
    """Read and validate a program file; return a ``Program``. Raises ``ConfigError`` naming file, field and value."""
    path = Path(path)
    raw = read_toml(path, "loyalty program file not found (set CENTRIC_LOYALTY_PROGRAM)")
    return parse_program(raw, path)


def parse_program(raw: dict[str, Any], path: Path | str = "<program>") -> Program:
    """Validate a parsed TOML document; return a ``Program``. Raises ``ConfigError``."""
    r = _Reader(Path(path))
    prog = r.get(raw, "program", dict, "")
    rounding = r.get(prog, "rounding", str, "program.", "floor")
    if rounding not in ROUNDING:
        raise r.fail("program.rounding", rounding, f"expected one of {', '.join(ROUNDING)}")
    earning = r.get(raw, "earning", dict, "", {})
    cats = r.get(earning, "category_multipliers", dict, "earning.", {})
    multipliers = {str(k): r.number(cats, k, "earning.category_multipliers.") for k in cats}
    first = r.get(earning, "first_purchase", dict, "earning.", {})
    campaigns = []
    for i, c in enumerate(r.get(earning, "campaigns", list, "earning.", [])):
        p = f"earning.campaigns[{i}]."
        if not isinstance(c, dict):
            raise r.fail(p.rstrip("."), c, "expected a table ([[earning.campaigns]])")
        start, end = r.time(c, "start", p), r.time(c, "end", p)
        if start and end and end < start:
            raise r.fail(p + "end", end, f"ends before its start {start}")
        repeat = r.get(c, "repeat", str, p, "never")
        if repeat not in REPEATS:
            raise r.fail(p + "repeat", repeat, f"expected one of {', '.join(REPEATS)}")
        if repeat == "yearly" and start and end and _shift_years(start, 1) <= end:
            raise r.fail(p + "end", end, "a yearly campaign must last less than a year")
        name = r.get(c, "name", str, p, f"campaign {i}")
        campaigns.append(Campaign(name, start, end, r.number(c, "multiplier", p), repeat))  # type: ignore[arg-type]
    tiers_t = r.get(raw, "tiers", dict, "")
    tiers = []
    for i, t in enumerate(r.get(tiers_t, "levels", list, "tiers.")):
        p = f"tiers.levels[{i}]."
        if not isinstance(t, dict):
            raise r.fail(p.rstrip("."), t, "expected a table ([[tiers.levels]])")
        tiers.append(
            Tier(
                r.get(t, "name", str, p),
                r.integer(t, "threshold", p),
                r.number(t, "multiplier", p, 1),
                tuple(r.get(t, "benefits", list, p, [])),
            )
        )
    if not tiers:
        raise r.fail("tiers.levels", [], "define at least one tier")
    if tiers[0].threshold != 0:
        # every customer starts in the lowest tier: a threshold above 0 would show a tier nobody qualified for
        raise r.fail("tiers.levels[0].threshold", tiers[0].threshold, "the lowest tier must have threshold 0")
    for prev, cur in zip(tiers, tiers[1:], strict=False):
        if cur.threshold <= prev.threshold:
            raise r.fail(f"tiers.levels[{tiers.index(cur)}].threshold", cur.threshold, "thresholds must increase")
    rewards: dict[str, Reward] = {}
    names = {t.name for t in tiers}
    for i, w in enumerate(r.get(raw, "rewards", list, "", [])):
        p = f"rewards[{i}]."
        if not isinstance(w, dict):
            raise r.fail(p.rstrip("."), w, "expected a table ([[rewards]])")
        rid = r.get(w, "id", str, p)
        if rid in rewards:
            raise r.fail(p + "id", rid, "duplicate reward id")
        allowed = tuple(r.get(w, "tiers", list, p, []))
        for name in allowed:
            if name not in names:
                raise r.fail(p + "tiers", name, f"unknown tier; tiers are {sorted(names)}")
        valid_from, valid_to = r.time(w, "valid_from", p, None), r.time(w, "valid_to", p, None)
        if valid_from and valid_to and valid_to < valid_from:
            raise r.fail(p + "valid_to", valid_to, f"ends before its valid_from {valid_from}")
        rewards[rid] = Reward(
            rid,
            r.get(w, "name", str, p, rid),
            r.integer(w, "cost", p, minimum=1),
            r.integer(w, "stock", p),
            allowed,
            valid_from,
            valid_to,
        )
    return Program(
        name=r.get(prog, "name", str, "program.", "loyalty"),
        points_per_unit=r.number(prog, "points_per_unit", "program."),
        rounding=rounding,
        cap_per_order=r.integer(prog, "cap_per_order", "program.", 0),
        expiry_months=r.integer(prog, "expiry_months", "program.", 12, minimum=1),
        point_value_cents=r.number(prog, "point_value_cents", "program.", 1),
        category_multipliers=multipliers,
        first_purchase_bonus=r.integer(first, "bonus", "earning.first_purchase.", 0),
        campaigns=tuple(campaigns),
        tiers=tuple(tiers),
        window_months=r.integer(tiers_t, "window_months", "tiers.", 12, minimum=1),
        grace_months=r.integer(tiers_t, "grace_months", "tiers.", 0),
        rewards=rewards,
    )
