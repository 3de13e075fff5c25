"""``centric pipeline run``: a run that dies in a stage resumes there; a rerun with no new data does nothing."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
import redis

from recsys.store.keys import Keys
from training.pipeline import runner
from training.pipeline.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _base(path: Path) -> Path:
    rng = random.Random(3)
    lines = ["customer_id,item_id,timestamp,quantity,price,order_id"]
    order = 0
    for customer in range(300):
        first = rng.randrange(0, 250)
        for _ in range(1 + int(rng.expovariate(0.15))):
            order += 1
            day = min(299, first + rng.randrange(0, 300 - first))
            for _ in range(rng.randint(1, 4)):
                item = int(rng.paretovariate(1.2)) % 80
                when = (dt.date(2026, 1, 1) + dt.timedelta(days=day)).isoformat()
                lines.append(f"c{customer},i{item},{when}T10:00:00Z,1,{rng.uniform(1, 9):.2f},o{order}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_a_crashed_run_resumes_at_its_stage_and_a_rerun_does_nothing(
    redis_client: redis.Redis, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(
        None,
        {
            "transactions": str(_base(tmp_path / "base.csv")),
            "work_dir": str(tmp_path / "work"),
            "events_dir": str(tmp_path / "events"),
            "offers": str(EXAMPLES / "offers.toml"),
            "loyalty": str(EXAMPLES / "loyalty.toml"),
            "primary": "hybrid",
        },
        environ={},
    )
    real = runner.RUNNERS["analyze"]

    def killed(ctx: runner.Context) -> dict:
        raise KeyboardInterrupt  # what a kill in the middle of the stage leaves: nothing recorded for it

    monkeypatch.setitem(runner.RUNNERS, "analyze", killed)
    first = runner.run_pipeline(config, redis_client, keys, tmp_path)
    assert (first.status, first.exit_code, first.error["stage"]) == ("interrupted", 130, "analyze")
    monkeypatch.setitem(runner.RUNNERS, "analyze", real)
    second = runner.run_pipeline(config, redis_client, keys, tmp_path)
    statuses = {s.name: s.status for s in second.stages}
    assert second.status == "succeeded" and second.exit_code == 0, second.error
    assert [statuses[n] for n in ("history", "train", "guard")] == ["skipped"] * 3
    assert [statuses[n] for n in ("analyze", "decide", "publish", "loyalty")] == ["done"] * 4
    third = runner.run_pipeline(config, redis_client, keys, tmp_path)
    assert third.status == "nothing_to_do" and all(s.status == "skipped" for s in third.stages[1:])
    assert third.snapshot["after"] == second.snapshot["after"] is not None
