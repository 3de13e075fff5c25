"""Program loading and the pure earning rules."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from recsys.exceptions import ConfigError
from recsys.loyalty.earning import Line, add_months, base_value, expiry_epoch, months_window, points_per_tier
from recsys.loyalty.program import load_program, parse_program

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
