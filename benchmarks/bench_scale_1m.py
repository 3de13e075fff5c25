"""The offline cycle end to end at 10k, 100k and 1M customers, through the real CLI, against a real redis-server.

    nice -n 10 .venv/bin/python -m benchmarks.bench_scale_1m --sizes 10k,100k,1m [--primary hybrid_ltr|hybrid]
    .venv/bin/python -m benchmarks.bench_scale_1m --customers 300 --items 120     # a tiny smoke run

For each size a synthetic retailer (``benchmarks/synthetic_retailer.py``; generated once into ``--data-dir``, not
timed) goes through ``centric validate → train → analyze → decide → publish``. Every stage is its own ``centric``
process, so its wall time includes the start-up and the load + validation each job does, and its peak RSS
(``ru_maxrss`` from ``wait4``) is its own. Publish writes to a private ``redis-server`` on a free loopback port
(the embedded one, ``appendfsync always``: the product default); the Redis memory after publish is reported too.

The yardstick, in the same run and on the same data: implicit's own ``AlternatingLeastSquares`` fit (the
parameters of Centric's ALS) plus a batch ``recommend`` of the top 20 for every customer, in a fresh process on the
customer × item count matrix (building the matrix is timed apart and not counted). Targets (issue 18): the whole
cycle ≤ 6 minutes on 2 cores at 1M customers and ≤ 1.5 × the yardstick.

Prints a markdown table (machine, data size, command, load average before and after every stage), merges the
figures into ``--results`` (JSON, one entry per size) and draws the cost curve of every size in it into ``--plot``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.machine import machine
from benchmarks.scale_report import KILLED_MEMORY, KILLED_TIMEOUT, STAGES, plot, table
from benchmarks.synthetic_retailer import SIZES, Spec, generate, spec_for

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_scale_1m.json"
PLOT = ROOT / "docs" / "img" / "scale-1m-cost-curve.png"
ALS_PARAMS = {"factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 10, "random_state": 42}


def loadavg() -> str:
    """The 1-minute load average (what every figure is reported with), or ``?`` off Linux."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


@dataclass
class StageResult:
    name: str
    command: list[str]
    seconds: float
    cpu_s: float
    peak_mb: float
    exit_code: int
    load_before: str
    load_after: str
    log: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": shlex.join(self.command),
            "seconds": round(self.seconds, 2),
            "cpu_s": round(self.cpu_s, 2),
            "peak_mb": round(self.peak_mb, 1),
            "exit_code": self.exit_code,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "log": self.log,
        }


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` now (MiB, from /proc), 0 when it is gone or off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def run_measured(
    name: str,
    command: list[str],
    env: dict[str, str],
    log: Path,
    timeout_s: float,
    rss_cap_mb: float | None = None,
) -> StageResult:
    """Run ``command`` in a fresh process group; return its wall time, CPU time and peak RSS (wait4), exit code.

    On a shared machine the CPU time (user + system, every thread) is the steadier figure: the wall time grows
    with the load, the CPU time much less.

    A stage still running after ``timeout_s`` is killed (exit code ``KILLED_TIMEOUT``), and one whose resident memory
    passes ``rss_cap_mb`` too (``KILLED_MEMORY``), so that one size cannot hold or exhaust a shared machine; its time
    is then the time to the kill, and its peak memory what it had reached.
    """
    before = loadavg()
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = started + timeout_s
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    code = os.waitstatus_to_exitcode(status)
                    break
                over_time = time.perf_counter() > deadline
                if over_time or (rss_cap_mb is not None and _rss_mb(proc.pid) > rss_cap_mb):
                    os.killpg(proc.pid, signal.SIGKILL)
                    _, status, usage = os.wait4(proc.pid, 0)
                    code = KILLED_TIMEOUT if over_time else KILLED_MEMORY
                    break
                time.sleep(0.05)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): the stage runs in its own session, stop it too
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        proc.returncode = code  # reaped by wait4: tell Popen so it does not wait again
    seconds = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return StageResult(name, command, seconds, cpu, usage.ru_maxrss / 1024, code, before, loadavg(), str(log))


def _centric() -> list[str]:
    return [sys.executable, "-m", "training.cli"]


def stage_commands(data: dict[str, Any], artifacts: Path, primary: str, explore: str) -> list[tuple[str, list[str]]]:
    """The five ``centric`` invocations of the cycle, in order."""
    tx, catalog = data["transactions"], data["catalog"]
    centric = _centric()
    return [
        ("validate", [*centric, "validate", "--transactions", tx, "--catalog", catalog, "--json"]),
        (
            "train",
            [*centric, "train", "--transactions", tx, "--catalog", catalog, "--out", str(artifacts)]
            + ["--primary", primary, "--explore", explore],
        ),
        ("analyze", [*centric, "analyze", "--transactions", tx, "--out", str(artifacts)]),
        ("decide", [*centric, "decide", "--offers", str(ROOT / "examples" / "offers.toml"), "--out", str(artifacts)]),
        ("publish", [*centric, "publish", str(artifacts)]),
    ]


def yardstick(transactions: str, k: int = 20) -> dict[str, Any]:
    """Child process: implicit's ALS fit + batch recommend on the customer × item count matrix."""
    import resource

    import implicit
    import numpy as np
    import polars as pl
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    frame = pl.read_parquet(transactions, columns=["customer_id", "item_id"])
    pairs = frame.group_by(["customer_id", "item_id"]).len()
    users = pairs.get_column("customer_id").cast(pl.Categorical).to_physical().to_numpy()
    items = pairs.get_column("item_id").cast(pl.Categorical).to_physical().to_numpy()
    counts = pairs.get_column("len").to_numpy().astype(np.float32)
    matrix = sp.csr_matrix((counts, (users, items)), shape=(int(users.max()) + 1, int(items.max()) + 1))
    del frame, pairs
    matrix_s = time.perf_counter() - started
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpool_limits(1, "blas"):  # as implicit recommends: its own threads do the work
        model = AlternatingLeastSquares(**ALS_PARAMS)
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        ids, _ = model.recommend(np.arange(matrix.shape[0]), matrix, N=k, filter_already_liked_items=True)
        recommend_s = time.perf_counter() - started
    return {
        "implicit": implicit.__version__,
        "customers": matrix.shape[0],
        "items": matrix.shape[1],
        "nnz": matrix.nnz,
        "matrix_s": round(matrix_s, 2),
        "fit_s": round(fit_s, 2),
        "recommend_s": round(recommend_s, 2),
        "total_s": round(fit_s + recommend_s, 2),
        "rows": int(ids.shape[0]),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _data_for(spec: Spec, data_dir: Path) -> dict[str, Any]:
    folder = data_dir / f"c{spec.customers}-i{spec.items}-s{spec.seed}"
    info_path = folder / "info.json"
    if info_path.exists():
        return json.loads(info_path.read_text())
    started = time.perf_counter()
    info = generate(spec, folder)
    info["generate_s"] = round(time.perf_counter() - started, 1)
    info_path.write_text(json.dumps(info))
    print(f"generated {info['lines']:,} lines, {spec.customers:,} customers in {info['generate_s']} s", file=sys.stderr)
    return info


def _redis_memory_mb(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return float(client.info("memory")["used_memory"]) / 2**20
    finally:
        client.close()


def run_size(label: str, spec: Spec, args: argparse.Namespace) -> dict[str, Any]:
    """Generate (or reuse) the data of one size, run the five stages and the yardstick; return the figures."""
    from recsys.store.embedded import EmbeddedRedis

    data = _data_for(spec, args.data_dir)
    work = Path(tempfile.mkdtemp(prefix=f"bench-scale-{label}-", dir=args.work_dir))
    artifacts, logs = work / "artifacts", work / "logs"
    logs.mkdir(parents=True)
    server = EmbeddedRedis(work / "home")  # appendfsync always: the product default
    url = server.start()
    env = {**os.environ, "CENTRIC_REDIS_URL": url, "CENTRIC_HOME": str(work / "home"), "PYTHONUNBUFFERED": "1"}
    env["CENTRIC_ENV"] = f"bench-scale-{label}"
    stages: list[StageResult] = []
    try:
        for name, command in stage_commands(data, artifacts, args.primary, args.explore):
            cap = args.rss_cap_gb * 1024 if args.rss_cap_gb else None
            result = run_measured(name, command, env, logs / f"{name}.log", args.stage_timeout, cap)
            stages.append(result)
            status = "ok" if result.exit_code == 0 else f"FAILED (exit {result.exit_code}, log {result.log})"
            print(
                f"[{label}] {name}: {result.seconds:.1f} s, peak {result.peak_mb:,.0f} MB, load "
                f"{result.load_before}→{result.load_after} {status}",
                file=sys.stderr,
            )
            if result.exit_code != 0 and not args.keep_going:
                break
        redis_mb = _redis_memory_mb(url)
    finally:
        server.stop()
    ruler = run_measured(
        "yardstick",
        [sys.executable, "-m", "benchmarks.bench_scale_1m", "--yardstick", data["transactions"]],
        dict(os.environ),
        logs / "yardstick.log",
        args.stage_timeout,
    )
    lines = Path(ruler.log).read_text().strip().splitlines()
    ruler_info = json.loads(lines[-1]) if ruler.exit_code == 0 and lines else {"error": f"see {ruler.log}"}
    print(f"[{label}] implicit ALS fit + recommend: {ruler_info.get('total_s')} s", file=sys.stderr)
    total = sum(s.seconds for s in stages)
    done = len(stages) == len(STAGES) and all(s.exit_code == 0 for s in stages)
    return {
        "size": label,
        "customers": spec.customers,
        "items": spec.items,
        "lines": data["lines"],
        "baskets": data["baskets"],
        "primary": args.primary,
        "explore": args.explore,
        "machine": machine(),
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "stages": [s.to_dict() for s in stages],
        "complete": done,
        "total_s": round(total, 1),
        "peak_mb": round(max((s.peak_mb for s in stages), default=0.0), 1),
        "redis_used_mb": round(redis_mb, 1),
        "yardstick": {
            **ruler_info,
            "process_s": round(ruler.seconds, 1),
            "cpu_s": round(ruler.cpu_s, 1),
            "load_before": ruler.load_before,
            "load_after": ruler.load_after,
        },
        "work_dir": str(work),
    }


def _merge(results: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write ``rows`` into ``results``, replacing earlier runs of the same size and primary model; return them all."""
    kept = json.loads(results.read_text()) if results.exists() else []
    fresh = {(r["customers"], r["primary"]) for r in rows}
    merged = [r for r in kept if (r["customers"], r["primary"]) not in fresh] + rows
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(sorted(merged, key=lambda r: (r["primary"], r["customers"])), indent=1))
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k", help=f"comma-separated named sizes: {', '.join(SIZES)}")
    parser.add_argument("--customers", type=int, help="one custom size instead of --sizes (with --items)")
    parser.add_argument("--items", type=int)
    parser.add_argument("--primary", default="hybrid_ltr", choices=["hybrid_ltr", "hybrid"])
    parser.add_argument("--explore", default="als", help="the hybrid's explorer (user_knn is quadratic in customers)")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "centric-synthetic")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the artifacts and logs go (default: tmp)")
    parser.add_argument("--stage-timeout", type=float, default=3600.0, help="kill a stage after this many seconds")
    parser.add_argument("--keep-going", action="store_true", help="run the later stages after one fails")
    parser.add_argument("--rss-cap-gb", type=float, default=None, help="kill a stage whose RSS passes this")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON the figures are merged into")
    parser.add_argument("--plot", default=str(PLOT), help="PNG of the cost curve ('' to skip)")
    parser.add_argument("--yardstick", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.yardstick:
        print(json.dumps(yardstick(args.yardstick)))
        return 0
    if args.customers:
        items = args.items or max(100, args.customers // 20)
        specs = [(f"{args.customers}", Spec(customers=args.customers, items=items))]
    else:
        specs = [(size, spec_for(size)) for size in args.sizes.split(",") if size]
    args.data_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    merged: list[dict[str, Any]] = []
    for label, spec in specs:
        rows.append(run_size(label, spec, args))
        merged = _merge(args.results, rows)  # after every size: a long run that is stopped keeps what it measured
    command = "python -m benchmarks.bench_scale_1m " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"Machine: {machine()}; command: `{command}`\n")
    print(table(rows))
    if args.plot:
        plot(merged, Path(args.plot), args.primary)
        print(f"\ncost curve of {len(merged)} size(s) → {args.plot}")
    return 0 if all(r["complete"] for r in rows) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the running stage and the Redis are stopped
    sys.exit(main())
