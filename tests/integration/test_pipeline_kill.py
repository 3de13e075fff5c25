"""Kill test: a real ``centric pipeline run`` killed with SIGKILL in the middle of a stage resumes at that stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from recsys.store.keys import Keys
from tests.integration.test_pipeline_resume import EXAMPLES, _base


def _run_command(tmp_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "training.cli",
        "pipeline",
        "run",
        "--transactions",
        str(tmp_path / "base.csv"),
        "--work-dir",
        str(tmp_path / "work"),
        "--events-dir",
        str(tmp_path / "events"),
        "--offers",
        str(EXAMPLES / "offers.toml"),
        "--loyalty",
        str(EXAMPLES / "loyalty.toml"),
        "--primary",
        "hybrid",
    ]


def _running_stage(runs: Path) -> str | None:
    for path in runs.glob("*.json"):
        try:
            report = json.loads(path.read_text())
        except ValueError:
            continue  # written atomically, but a file may vanish between glob and read
        stage = next((s["name"] for s in report["stages"] if s["status"] == "running"), None)
        if stage:
            return stage
    return None


def _reports(runs: Path) -> list[dict]:
    """The run reports, oldest first (by start time: two runs may start within the same second)."""
    return sorted((json.loads(p.read_text()) for p in runs.glob("*.json")), key=lambda r: r["started_at"])


# about 5 s on 2 shared cores (train lasts 0.2-0.6 s here, polled every 20 ms): fast enough for the default suite
def test_a_run_killed_during_train_resumes_at_train_and_a_rerun_says_nothing_to_do(
    redis_url: str, keys: Keys, tmp_path: Path
) -> None:
    _base(tmp_path / "base.csv")
    env = {**os.environ, "CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": keys.env, "COLUMNS": "200"}
    command = _run_command(tmp_path)
    runs = tmp_path / "work" / "runs"
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while _running_stage(runs) != "train":
        assert killed.poll() is None, "the run ended before it reached train"
        assert time.monotonic() < deadline, "the run never reached train"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # no handler, no cleanup: the lock and a half-written stage stay behind
    killed.wait()
    dead = json.loads(next(runs.glob("*.json")).read_text())
    assert dead["status"] == "running"

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    first, second = _reports(runs)
    statuses = {s["name"]: s["status"] for s in second["stages"]}
    assert statuses["history"] == "skipped"  # finished before the kill
    assert [statuses[n] for n in ("train", "guard", "analyze", "decide", "publish", "loyalty")] == ["done"] * 6
    assert second["status"] == "succeeded" and second["snapshot"]["after"]
    # the killed run's report no longer claims to be running
    assert first["status"] == "killed" and first["error"]["stage"] == "train"

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do: no new events and no input changed since the last run" in " ".join(again.stdout.split())
    third = _reports(runs)[-1]
    assert third["status"] == "nothing_to_do"
    assert all(s["status"] == "skipped" for s in third["stages"][1:])
    assert third["snapshot"]["after"] == second["snapshot"]["after"]
