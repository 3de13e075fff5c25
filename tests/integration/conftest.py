"""Fixtures of the integration tests: a ledger on the example program, on the test's key namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program

PROGRAM = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml"


@pytest.fixture
def ledger(redis_client, keys) -> RedisLedger:
    """A ``RedisLedger`` on ``tests/fixtures/loyalty.toml`` with its reward stock created."""
    led = RedisLedger(redis_client, keys, load_program(PROGRAM))
    led.init_stock()
    return led
