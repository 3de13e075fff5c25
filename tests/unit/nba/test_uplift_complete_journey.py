"""The semi-synthetic uplift check on The Complete Journey's real households (planted segment-dependent effect)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.nba.cj_history import complete_journey_profiles
from recsys.nba.uplift_simulation import uplift_check


@pytest.mark.shared_data
def test_the_uplift_policy_captures_well_over_the_response_policy_under_the_same_budget(shared_data: Path) -> None:
    profiles = complete_journey_profiles(pl.read_parquet(shared_data / "completejourney" / "transactions.parquet"))
    runs = [uplift_check(profiles, seed) for seed in range(5)]
    uplift, response = np.mean([r.uplift_value for r in runs]), np.mean([r.response_value for r in runs])
    assert uplift >= 1.3 * response
    assert all(r.uplift_value <= r.best_value + 1e-9 for r in runs)  # nobody beats targeting by the true effect
