"""Fuzz the HTTP API against its own OpenAPI document with schemathesis (all checks, stateful phase included).

Starts a private Redis, publishes a small snapshot, creates an admin key, serves the API under uvicorn with the
service's HTTP protocol, and runs ``st run <openapi.json> --checks all``. The CI test
(``tests/e2e/test_schemathesis.py``) runs the same with a few examples per operation; this script runs longer:

    python -m benchmarks.bench_fuzz --max-examples 200 [--seed 1]

Exit code 0 when schemathesis reports no failure. Prints a table: operations, cases, failures, seconds, load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import harness
from benchmarks.machine import machine
from recsys.store.connection import sync_client
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys
from serving.auth import create_api_key
from serving.hotpath.http_protocol import PROTOCOL

ROOT = Path(__file__).resolve().parents[1]
ST = Path(sys.executable).with_name("st")


@dataclass(frozen=True)
class Target:
    """A running service to fuzz: its base URL and an admin key."""

    base: str
    api_key: str


@contextlib.contextmanager
def fuzz_target(work: Path, *, redis_url: str | None = None, env_name: str = "fuzz") -> Iterator[Target]:
    """Serve the API on a small published snapshot (own Redis unless ``redis_url``); yield the target."""
    from tests.helpers.http import write_artifacts
    from training.jobs.publish import run_publish

    with contextlib.ExitStack() as stack:
        if redis_url is None:
            server = EmbeddedRedis(work / "home", appendfsync="no")
            redis_url = server.start()
            stack.callback(server.stop)
        keys = Keys(env_name)
        client = sync_client(redis_url)
        try:
            run_publish(client, keys, write_artifacts(work / "artifacts"))
            api_key = create_api_key(client, keys, "admin", name="fuzz")
        finally:
            client.close()
        env = {
            **os.environ,
            "CENTRIC_REDIS_URL": redis_url,
            "CENTRIC_ENV": env_name,
            "CENTRIC_DASHBOARD_WARMUP": "false",
            "CENTRIC_RATE_LIMIT_PER_S": "0",  # thousands of requests with one key: limits are tested elsewhere
            "CENTRIC_AUTH_LOOKUPS_PER_S": "0",
        }
        api = stack.enter_context(harness.serving("serving.app:create_app", env, uvicorn_args=["--http", PROTOCOL]))
        yield Target(api.base, api_key)


def run_schemathesis(
    target: Target, *, max_examples: int, seed: int | None = None, report: Path | None = None
) -> tuple[int, str]:
    """Run ``st run`` against ``target``; return its exit code and its output."""
    cmd = [
        str(ST),
        "run",
        f"{target.base}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {target.api_key}",
        "--max-examples",
        str(max_examples),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        "--generation-database",
        "none",
    ]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if report is not None:
        cmd += ["--report", "junit", "--report-junit-path", str(report)]
    with tempfile.TemporaryDirectory(prefix="centric-st-") as scratch:  # st keeps state in ./.schemathesis
        done = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True, timeout=3600, check=False)
    return done.returncode, done.stdout + done.stderr


def summary(output: str) -> dict[str, str]:
    """Pick the counts out of schemathesis's closing summary."""
    out: dict[str, str] = {}
    for name, pattern in (
        ("operations", r"Selected:\s+(\d+)/\d+"),
        ("cases", r"Test cases:\s+(\d+) generated"),
        ("failures", r"(\d+) unique failures"),
    ):
        match = re.search(pattern, output)
        out[name] = match.group(1) if match else ("0" if name == "failures" else "?")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="centric-fuzz-") as tmp, fuzz_target(Path(tmp)) as target:
        start = time.perf_counter()
        code, output = run_schemathesis(target, max_examples=args.max_examples, seed=args.seed)
        seconds = time.perf_counter() - start
    print(output[-4000:])
    counts = summary(output)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"\nmachine: {machine()}; load average: {load}")
    print("command: python -m benchmarks.bench_fuzz " + " ".join(sys.argv[1:]))
    print("\n| operations | max examples | test cases | failures | seconds | exit |")
    print("|---:|---:|---:|---:|---:|---:|")
    row = [counts["operations"], args.max_examples, counts["cases"], counts["failures"], f"{seconds:.0f}", code]
    print("| " + " | ".join(map(str, row)) + " |")
    sys.exit(code)


if __name__ == "__main__":
    main()
