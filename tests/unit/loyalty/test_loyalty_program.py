"""Program loading and the pure earning rules."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from recsys.exceptions import ConfigError
from recsys.loyalty.earning import Line, add_months, base_value, expiry_epoch, months_window, points_per_tier
from recsys.loyalty.program import Campaign, load_program, parse_program

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "loyalty.toml"


def _raw() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def test_example_program_loads():
    program = load_program(EXAMPLE)
    assert [t.name for t in program.tiers] == ["Bronze", "Silver", "Gold"]
    assert program.rewards["gold-lounge"].tiers == ("Gold",)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda r: r["program"].update(rounding="sideways"), "program.rounding"),
        (lambda r: r["program"].pop("points_per_unit"), "program.points_per_unit"),
        (lambda r: r["tiers"]["levels"][1].update(threshold=-5), "tiers.levels[1].threshold"),
        (lambda r: r["rewards"][2].update(tiers=["Platinum"]), "rewards[2].tiers"),
        (lambda r: r["rewards"].append(dict(r["rewards"][0])), "duplicate reward id"),
    ],
)
def test_bad_program_names_file_field_and_value(mutate, needle):
    raw = _raw()
    mutate(raw)
    with pytest.raises(ConfigError, match="prog.toml") as err:
        parse_program(raw, "prog.toml")
    assert needle in str(err.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_program(tmp_path / "nope.toml")


def test_tier_multiplier_campaign_and_cap():
    program = load_program(EXAMPLE)
    plain = points_per_tier(program, Decimal("100.9"), datetime(2026, 6, 1, tzinfo=UTC))
    assert plain == [100, 126, 151]  # floor(100.9 x 1 / 1.25 / 1.5)
    holiday = points_per_tier(program, Decimal("100"), datetime(2026, 12, 24, tzinfo=UTC))
    assert holiday == [200, 250, 300]
    capped = points_per_tier(program, Decimal("1000000"), datetime(2026, 6, 1, tzinfo=UTC))
    assert capped == [program.cap_per_order] * 3


def test_category_multipliers_weight_lines():
    program = load_program(EXAMPLE)
    lines = [Line("apple", Decimal(2), Decimal("5")), Line("soap", Decimal(1), Decimal("10"))]
    value = base_value(program, Decimal("20"), lines, {"apple": "PRODUCE"})
    assert value == Decimal(2) * 5 * 2 + 10


def test_expiry_and_windows_follow_calendar_months():
    program = load_program(EXAMPLE)
    now = datetime(2025, 1, 31, 15, tzinfo=UTC)
    assert add_months(now, 1) == datetime(2025, 2, 28, 15, tzinfo=UTC)
    assert expiry_epoch(program, now) == int(datetime(2026, 1, 31, tzinfo=UTC).timestamp())
    assert months_window(now, 3) == ["202501", "202412", "202411"]


def _campaign(start: datetime, end: datetime, repeat: str) -> Campaign:
    return Campaign("c", start, end, Decimal(2), repeat)


def test_a_yearly_campaign_recurs_on_the_same_dates_every_year():
    december = _campaign(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "yearly")
    assert december.active(datetime(2031, 12, 24, tzinfo=UTC))
    assert december.active(datetime(2031, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert not december.active(datetime(2031, 11, 30, 23, 59, 59, tzinfo=UTC))
    assert not december.active(datetime(2032, 1, 1, tzinfo=UTC))
    assert not december.active(datetime(2025, 12, 24, tzinfo=UTC))  # before its first year
    once = _campaign(december.start, december.end, "never")
    assert once.active(datetime(2026, 12, 24, tzinfo=UTC)) and not once.active(datetime(2027, 12, 24, tzinfo=UTC))


def test_a_yearly_campaign_may_cross_new_year_and_leap_day():
    winter = _campaign(datetime(2026, 12, 20, tzinfo=UTC), datetime(2027, 1, 5, 23, 59, 59, tzinfo=UTC), "yearly")
    assert winter.active(datetime(2029, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert winter.active(datetime(2030, 1, 3, tzinfo=UTC))
    assert not winter.active(datetime(2030, 1, 6, tzinfo=UTC))
    leap = _campaign(datetime(2028, 2, 29, tzinfo=UTC), datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC), "yearly")
    assert leap.active(datetime(2029, 2, 28, 12, tzinfo=UTC))  # 29 February falls on the 28th in a common year
    assert leap.active(datetime(2032, 2, 29, 12, tzinfo=UTC))


def test_the_example_holiday_campaign_doubles_points_every_december():
    program = load_program(EXAMPLE)
    assert points_per_tier(program, Decimal("100"), datetime(2031, 12, 24, tzinfo=UTC)) == [200, 250, 300]
    assert points_per_tier(program, Decimal("100"), datetime(2031, 7, 1, tzinfo=UTC)) == [100, 125, 150]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"repeat": "weekly"}, "earning.campaigns[0].repeat"),
        ({"end": datetime(2028, 1, 1, tzinfo=UTC)}, "less than a year"),
    ],
)
def test_bad_campaign_repeat_is_named(change, needle):
    raw = _raw()
    raw["earning"]["campaigns"][0].update(change)
    with pytest.raises(ConfigError, match="prog.toml") as err:
        parse_program(raw, "prog.toml")
    assert needle in str(err.value)
