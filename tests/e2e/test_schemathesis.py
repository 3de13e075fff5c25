"""The OpenAPI document describes the API: schemathesis (all checks, stateful phase included) finds 0 failures.

A real service (uvicorn, the service's HTTP protocol) on a real Redis with a small published snapshot, an admin
key, and a bounded number of examples per operation so that CI stays quick; ``python -m benchmarks.bench_fuzz``
runs the same for longer.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench_fuzz import fuzz_target, run_schemathesis, summary
from recsys.store.keys import Keys

MAX_EXAMPLES = 15


def test_schemathesis_finds_no_failure_in_any_operation(tmp_path: Path, redis_url: str, keys: Keys) -> None:
    with fuzz_target(tmp_path, redis_url=redis_url, env_name=keys.env) as target:
        code, output = run_schemathesis(target, max_examples=MAX_EXAMPLES, seed=16, report=tmp_path / "junit.xml")
    counts = summary(output)
    assert code == 0, output[-6000:]
    assert counts["failures"] == "0" and int(counts["cases"]) > 500, counts
    assert "Stateful" in output
