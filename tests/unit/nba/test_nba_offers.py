"""Offer catalog loading: the example works; every kind of mistake names the file, offer, field and value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from recsys.exceptions import ConfigError
from recsys.nba.lifecycle_defaults import GOALS
from recsys.nba.offers import catalog_from_dict, load_catalog

ROOT = Path(__file__).resolve().parents[3]

GOOD = """
[policy]
max_per_channel = { app = 2 }
[[offer]]
id = "a"
kind = "percent_discount"
goal = "retain"
channels = ["app"]
value = 10.5
cost = 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "offers.toml"
    path.write_text(text)
    return path


def test_example_catalog_loads_with_policy_and_experiment() -> None:
    catalog = load_catalog(ROOT / "examples" / "offers.toml")
    assert len(catalog.offers) >= 5
    assert {o.goal for o in catalog.offers} >= set(GOALS)
    assert catalog.experiments and any(a.holdout for a in catalog.experiments[0].arms)


def test_goal_without_eligibility_gets_the_lifecycle_default_and_money_is_decimal(tmp_path: Path) -> None:
    offer = load_catalog(write(tmp_path, GOOD)).offers[0]
    assert offer.eligibility is not None and offer.eligibility.source == GOALS["retain"].eligibility
    assert offer.value == Decimal("10.50") and offer.cost == Decimal("2.00")
    assert offer.policy.max_per_channel["app"] == 2 and offer.policy.max_per_channel["email"] == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('kind = "percent_discount"', 'kind = "bogus"'), "offer 'a': 'kind' = 'bogus'"),
        (('channels = ["app"]', 'channels = ["fax"]'), "offer 'a': 'channels'"),
        (("value = 10.5", "value = -1"), "offer 'a': 'value' = -1"),
        (("value = 10.5", ""), "offer 'a': 'value' is required"),
        (('goal = "retain"', 'eligibility = "clv >= \\"x\\""'), "offer 'a': eligibility: cannot compare"),
        (('goal = "retain"', 'colour = "red"'), "unknown field(s) ['colour']"),
        (('id = "a"', 'id = "has space"'), "'id' must be"),
        # a final newline would reach the audience download's Content-Disposition header
        (('id = "a"', 'id = "a\\n"'), "'id' must be"),
        (("cost = 2", "cost = 2\nvalid_from = 2025-01-01T00:00:00"), "has no time zone"),
        (("cost = 2", "cost = 2\nvalid_from = 2025-02-01\nvalid_to = 2025-01-01"), "must be after"),
        (("cost = 2", "cost = 2\nmax_redemptions = -3"), "'max_redemptions' must be a whole number"),
        (("cost = 2", "cost = 2\nlever = 0"), "'lever' must be a number in (0.0, 1000.0]"),
        (("max_per_channel = { app = 2 }", "max_per_channel = { fax = 2 }"), "max_per_channel.fax"),
    ],
)
def test_invalid_offer_fields_are_reported_with_file_offer_field_and_value(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_catalog(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_duplicate_ids_missing_file_and_bad_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        load_catalog(write(tmp_path, GOOD + GOOD.split("[policy]\nmax_per_channel = { app = 2 }")[1]))
    with pytest.raises(ConfigError, match="not found"):
        load_catalog(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_catalog(write(tmp_path, "[[offer]\nid="))


def test_experiment_naming_an_unknown_offer_is_rejected(tmp_path: Path) -> None:
    text = (
        GOOD
        + '\n[[experiment]]\nid = "e"\noffers = ["nope"]\n'
        + 'arms = [{name="t", weight=1}, {name="h", weight=1, holdout=true}]\n'
    )
    with pytest.raises(ConfigError, match="unknown offer"):
        load_catalog(write(tmp_path, text))


# --- Review of 2026-11-30: configuration that once slipped through --------------------------------------------------


def test_max_per_customer_zero_is_refused_not_unlimited() -> None:
    """0 used to mean "no limit" when served (``or 1_000_000``); an offer must allow at least one redemption."""
    with pytest.raises(ConfigError, match="max_per_customer"):
        catalog_from_dict(
            {"offer": [{"id": "x", "kind": "content", "channels": ["app"], "value": 1, "max_per_customer": 0}]}
        )
