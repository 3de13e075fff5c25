"""Program loading and the pure earning rules."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from recsys.exceptions import ConfigError
from recsys.loyalty import ops
from recsys.loyalty.earning import Line, add_months, base_value, expiry_epoch, months_window, points_per_tier
from recsys.loyalty.program import Campaign, load_program, parse_program
from recsys.store.keys import Keys

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "loyalty.toml"


# tests/fixtures/loyalty.toml: the example without its seasonal campaign
FIXTURE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "loyalty.toml"


def _fixture_raw() -> dict:
    return tomllib.loads(FIXTURE.read_text())


def _raw() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def test_example_program_loads():
    program = load_program(EXAMPLE)
    assert [t.name for t in program.tiers] == ["Bronze", "Silver", "Gold"]
    assert program.rewards["gold-lounge"].tiers == ("Gold",)


def test_a_stored_tier_number_past_the_programs_tiers_reads_as_the_highest_tier():
    """A ledger keeps tier numbers; a program edited down to fewer tiers shows such customers in its top tier."""
    program = load_program(EXAMPLE)
    assert [program.tier_at(n).name for n in (0, 1, 2, 5)] == ["Bronze", "Silver", "Gold", "Gold"]
    assert program.tier_number(5) == 2


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


# --- Program-rule regressions from the review of 2026-11-30 (each failed on the code reviewed) ----------------------
# From the review of the loyalty program rules (earning, tiers, the account view, liability), 2026-11-30: each test
# states the rule from the docs / program comments and failed on the code as it was reviewed.


def test_campaign_counts_an_order_in_the_last_second_of_its_window():
    """The holiday campaign ends 2026-12-31T23:59:59Z (inclusive). An order at 23:59:59.5 is recorded by the ledger at
    epoch second 23:59:59 (inside the window) but earns no campaign points: the check compares microseconds."""
    program = load_program(EXAMPLE)
    last_second = datetime(2026, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert points_per_tier(program, Decimal(100), last_second) == [200, 250, 300]


def test_expiry_and_month_use_the_utc_day_for_a_non_utc_now():
    """expiry_epoch: 'start of that day, UTC'. 2026-01-31T23:00-05:00 is 2026-02-01T04:00Z: 12 months later the
    points expire at 2027-02-01T00:00Z and the order counts in month 202602. The code uses the caller's zone."""
    program = load_program(FIXTURE)
    now = datetime(2026, 1, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    assert expiry_epoch(program, now) == int(datetime(2027, 2, 1, tzinfo=UTC).timestamp())
    call = ops.earn_call(program, Keys(env="t"), "c1", "o1", Decimal(10), [], now, "k1")
    assert json.loads(call.args[5])["month"] == "202602"


@pytest.mark.parametrize("value", [float("nan"), "NaN", float("inf"), "Infinity"])
def test_non_finite_number_is_a_config_error(value):
    """points_per_unit = nan raises decimal.InvalidOperation (no file/field); inf is accepted and every earn then
    fails in quantize. Both should be a ConfigError naming the field."""
    raw = _fixture_raw()
    raw["program"]["points_per_unit"] = value
    with pytest.raises(ConfigError, match=r"prog\.toml.*program\.points_per_unit"):
        parse_program(raw, "prog.toml")


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda r: r["tiers"]["levels"].__setitem__(0, 5), "tiers.levels[0]"),
        (lambda r: r["earning"].__setitem__("campaigns", [3]), "earning.campaigns[0]"),
    ],
)
def test_a_list_entry_that_is_not_a_table_is_a_config_error(mutate, needle):
    """`levels = [5]` raises TypeError('argument of type int is not iterable'), not a ConfigError naming the field."""
    raw = _fixture_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_program(raw, "prog.toml")
    assert needle in str(err.value)


def test_lowest_tier_must_start_at_zero():
    """Every customer starts in tier 0 (an absent 'tier' field reads 0), so a lowest threshold of 500 makes the view
    and the earn answer show 'Bronze' to a customer with 0 points, a tier they do not hold. Refuse it on load."""
    raw = _fixture_raw()
    raw["tiers"]["levels"][0]["threshold"] = 500
    with pytest.raises(ConfigError, match=r"tiers\.levels\[0\]\.threshold"):
        parse_program(raw, "prog.toml")


def test_reward_validity_window_ending_before_it_starts_is_refused():
    """Campaigns refuse end < start; rewards accept valid_to < valid_from and are then silently never available."""
    raw = _fixture_raw()
    raw["rewards"][2]["valid_to"] = datetime(2019, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"rewards\[2\]\.valid_to"):
        parse_program(raw, "prog.toml")
