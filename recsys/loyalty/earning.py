"""Pure earning rules: how many points an order earns, for every tier (the ledger script picks the tier's)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from recsys.loyalty.program import Program

_ROUNDING = {"floor": ROUND_FLOOR, "ceil": ROUND_CEILING, "round": ROUND_HALF_UP}


@dataclass(frozen=True)
class Line:
    """One order line: ``price`` is the unit price (Decimal currency units)."""

    item_id: str
    quantity: Decimal
    price: Decimal


def base_value(
    program: Program, amount: Decimal, lines: Sequence[Line], categories: Mapping[str, str] | None = None
) -> Decimal:
    """Return the order's multiplier-weighted currency value (category multipliers applied per line).

    Without lines, ``amount`` is used as it is; with lines, lines carry the value.
    """
    if not lines:
        return amount
    categories = categories or {}
    total = Decimal(0)
    for line in lines:
        mult = program.category_multipliers.get(categories.get(line.item_id, ""), Decimal(1))
        total += line.quantity * line.price * mult
    return total


def points_per_tier(program: Program, value: Decimal, now: datetime) -> list[int]:
    """Return the points an order of weighted ``value`` earns at ``now``, one int per tier (lowest first).

    Campaign windows multiply; the rounding rule applies to the order total; the cap applies last
    (the first-purchase bonus is added by the ledger script, which knows whether it is the first order).
    """
    campaign = Decimal(1)
    now = now.replace(
        microsecond=0
    )  # the ledger's resolution: an order at 23:59:59.5 is inside a window ending 23:59:59
    for c in program.campaigns:
        if c.active(now):
            campaign *= c.multiplier
    out = []
    for tier in program.tiers:
        raw = value * program.points_per_unit * tier.multiplier * campaign
        points = int(raw.quantize(Decimal(1), rounding=_ROUNDING[program.rounding]))
        points = max(points, 0)
        if program.cap_per_order:
            points = min(points, program.cap_per_order)
        out.append(points)
    return out


def cents(amount: Decimal | float | str) -> int:
    """Return ``amount`` currency units as integer cents (half up)."""
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def months_window(now: datetime, months: int) -> list[str]:
    """Return the ``YYYYMM`` labels of the ``months`` calendar months ending with ``now``'s month (UTC)."""
    if now.utcoffset():
        now = now.astimezone(UTC)
    return list(_window(now.year, now.month, months))


@functools.lru_cache(maxsize=4096)  # backfills ask for the same few hundred months over and over
def _window(y: int, m: int, months: int) -> tuple[str, ...]:
    out = []
    for _ in range(months):
        out.append(f"{y:04d}{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return tuple(out)


def add_months(moment: datetime, months: int) -> datetime:
    """Return ``moment`` plus ``months`` calendar months (day clamped to the month's length)."""
    total = moment.month - 1 + months
    y, m = moment.year + total // 12, total % 12 + 1
    days = [31, 29 if (y % 4 == 0 and (y % 100 or y % 400 == 0)) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    return moment.replace(year=y, month=m, day=min(moment.day, days))


def month_label(now: datetime) -> str:
    """Return ``now``'s ``YYYYMM`` label in UTC (the format of ``months_window``; several times faster than
    strftime)."""
    if now.utcoffset():
        now = now.astimezone(UTC)
    return f"{now.year:04d}{now.month:02d}"


def expiry_epoch(program: Program, now: datetime) -> int:
    """Return the epoch second at which points earned at ``now`` expire (start of that day, UTC)."""
    if now.utcoffset():
        now = now.astimezone(UTC)
    return _expiry(program.expiry_months, now.year, now.month, now.day, now.tzinfo)


@functools.lru_cache(maxsize=4096)  # one entry per day seen: the service asks once per write, backfills per order
def _expiry(months: int, year: int, month: int, day: int, tz: tzinfo | None) -> int:
    end = add_months(datetime(year, month, day, tzinfo=tz), months)
    return math.floor(end.timestamp())
