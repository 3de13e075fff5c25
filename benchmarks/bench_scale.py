"""The daily cycle end to end on a synthetic retailer: validate → train → analyze → decide → publish, per size.

    nice -n 10 python -m benchmarks.bench_scale --customers 10000,100000,1000000 [--work DIR] [--plot FILE]

The retailer (``generate``): ``items`` items in ``items / 50`` categories with Zipf popularity (s = 1.05); customers'
line counts heavy-tailed (lognormal, σ = 1.1, at least one); 40 % of a customer's lines re-buy one of their 6
favourite items (repeat categories), the rest follow the global Zipf; baskets of ~8 lines on days spread over two
years (Complete Journey-like: one file of lines with order ids, a catalog with categories and prices). Each
customer size uses 20 lines and 1/20 items per customer (1M customers: 20M lines, 50k items).

Every stage is the ``centric`` command a user runs, in its own process (``os.wait4`` gives its wall time and peak
RSS; publish's peak includes its embedded redis-server's). ``implicit`` ALS alone (fit with Centric's ALS
parameters, then batch recommend 20 items for every customer, on the same matrix, matrix build excluded) is timed in
the same run as the reference. ``/proc/loadavg`` before and after each stage is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.machine import machine

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2024, 1, 1, tzinfo=UTC)
STAGES = ("validate", "train", "analyze", "decide", "publish")


def generate(customers: int, items: int, lines: int, out: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``transactions.parquet`` and ``catalog.parquet`` of a synthetic retailer into ``out``; return them."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    popularity = 1.0 / np.arange(1, items + 1) ** 1.05
    popularity /= popularity.sum()
    order = rng.permutation(items)  # popularity rank -> item index, so popular items are not all low ids
    categories = max(items // 50, 1)
    weights = rng.lognormal(0.0, 1.1, customers)
    counts = np.maximum(1, np.floor(weights / weights.sum() * lines)).astype(np.int64)
    counts[rng.integers(0, customers, max(lines - int(counts.sum()), 0))] += 1  # top up to about ``lines``
    total = int(counts.sum())
    customer = np.repeat(np.arange(customers, dtype=np.int64), counts)
    favourites = order[rng.choice(items, size=(customers, 6), p=popularity)]
    repeat = rng.random(total) < 0.4
    item = np.where(
        repeat, favourites[customer, rng.integers(0, 6, total)], order[rng.choice(items, size=total, p=popularity)]
    )
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(total) - np.repeat(starts, counts)
    basket = position // 8
    order_id = customer * 10_000 + basket
    day = (rng.integers(0, 730, customers)[customer] + basket * rng.integers(3, 30, customers)[customer]) % 730
    seconds = day * 86_400 + rng.integers(8 * 3600, 21 * 3600, customers)[customer]
    price = np.round(rng.lognormal(1.0, 0.8, items), 2) + 0.1
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series(customer).cast(pl.String),
            "item_id": pl.Series(item).cast(pl.String),
            "timestamp": pl.Series((seconds + int(T0.timestamp())) * 1_000_000).cast(pl.Datetime("us", "UTC")),
            "order_id": pl.Series(order_id).cast(pl.String),
            "quantity": pl.Series(rng.choice([1, 1, 1, 2, 3], total)).cast(pl.Float64),
            "price": pl.Series(price[item]),
        }
    ).with_columns(("c" + pl.col("customer_id")).alias("customer_id"), ("i" + pl.col("item_id")).alias("item_id"))
    transactions = out / "transactions.parquet"
    frame.write_parquet(transactions)
    catalog = pl.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(items)],
            "name": [f"Item {i}" for i in range(items)],
            "category": [f"cat{c}" for c in rng.integers(0, categories, items)],
            "price": price,
        }
    )
    catalog.write_parquet(out / "catalog.parquet")
    return transactions, out / "catalog.parquet"


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0] if Path("/proc/loadavg").exists() else "?"


def run_stage(args: list[str], log: Path, env: dict[str, str]) -> dict[str, object]:
    """Run one command; return its wall and CPU seconds, peak RSS (MB, the process or a waited child) and loads."""
    before = _load()
    started = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(args[2:])} failed ({code}); see {log}")
    return {
        "seconds": round(seconds, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),  # CPU time used: much less affected by a shared machine
        "peak_mb": round(usage.ru_maxrss / 1024),
        "load": f"{before}→{_load()}",
    }


IMPLICIT_REFERENCE = """
import sys, time, numpy as np, polars as pl, scipy.sparse as sp
from threadpoolctl import threadpool_limits
from implicit.cpu.als import AlternatingLeastSquares
from recsys.models.collaborative import ALSRecommender
tx = pl.read_parquet(sys.argv[1], columns=["customer_id", "item_id"])
c = tx["customer_id"].cast(pl.Categorical).to_physical().to_numpy()
i = tx["item_id"].cast(pl.Categorical).to_physical().to_numpy()
m = sp.csr_matrix((np.ones(c.size, np.float32), (c, i)))
m.sum_duplicates()
p = ALSRecommender()
with threadpool_limits(1, "blas"):
    t, c = time.perf_counter(), time.process_time()
    model = AlternatingLeastSquares(factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                                    iterations=p.iterations, random_state=p.random_state)
    model.fit(m, show_progress=False)
    fit, fit_cpu = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    model.recommend(np.arange(m.shape[0]), m, N=20, filter_already_liked_items=False)
    rec, rec_cpu = time.perf_counter() - t, time.process_time() - c
print({"fit": round(fit, 1), "recommend": round(rec, 1),
       "fit_cpu": round(fit_cpu, 1), "recommend_cpu": round(rec_cpu, 1)})
"""


def run_size(customers: int, work: Path) -> dict[str, object]:
    """Generate one size and run every stage on it; return the figures."""
    items, lines = max(customers // 20, 100), customers * 20
    data = work / f"c{customers}"
    started = time.perf_counter()
    transactions, catalog = generate(customers, items, lines, data / "input")
    generated = round(time.perf_counter() - started, 1)
    art, home = data / "artifacts", data / "home"
    env = {k: v for k, v in os.environ.items() if k != "CENTRIC_REDIS_URL"} | {"CENTRIC_HOME": str(home)}
    env["CENTRIC_ENV"] = f"scale{customers}"
    cli = [sys.executable, "-m", "training.cli"]
    tx = ["--transactions", str(transactions)]
    commands = {
        "validate": [*cli, "validate", *tx, "--catalog", str(catalog), "--json"],
        "train": [*cli, "train", *tx, "--out", str(art), "--explore", "als"],
        "analyze": [*cli, "analyze", *tx, "--out", str(art), "--no-plots"],
        "decide": [*cli, "decide", "--out", str(art), "--offers", str(ROOT / "examples" / "offers.toml")],
        "publish": [*cli, "publish", str(art)],
    }
    stages = {name: run_stage(commands[name], data / f"{name}.log", env) for name in STAGES}
    reference_log = data / "implicit.log"
    reference = run_stage([sys.executable, "-c", IMPLICIT_REFERENCE, str(transactions)], reference_log, env)
    implicit = json.loads(reference_log.read_text().strip().splitlines()[-1].replace("'", '"'))
    total = sum(float(s["seconds"]) for s in stages.values())  # type: ignore[arg-type]
    cpu = sum(float(s["cpu_s"]) for s in stages.values())  # type: ignore[arg-type]
    return {
        "customers": customers,
        "items": items,
        "lines": int(pl.scan_parquet(transactions).select(pl.len()).collect().item()),
        "generate_s": generated,
        "stages": stages,
        "total_s": round(total, 1),
        "total_cpu_s": round(cpu, 1),
        "peak_mb": max(int(s["peak_mb"]) for s in stages.values()),  # type: ignore[call-overload]
        "implicit": implicit | {k: reference[k] for k in ("peak_mb", "load", "cpu_s")},
        "ratio_to_implicit": round(total / max(implicit["fit"] + implicit["recommend"], 1e-9), 2),
        "cpu_ratio_to_implicit": round(cpu / max(implicit["fit_cpu"] + implicit["recommend_cpu"], 1e-9), 2),
    }


def table(results: list[dict[str, object]]) -> str:
    """The README table: one row per size, seconds (peak MB) per stage."""
    head = (
        "| customers | lines | " + " | ".join(STAGES)
        + " | total (wall / cpu) | peak MB | implicit ALS fit + recommend | ratio (wall / cpu) |"
    )  # fmt: skip
    rows = [head, "|" + "---|" * (len(STAGES) + 6)]
    for r in results:
        stages = r["stages"]
        cells = [
            f"{stages[s]['seconds']} s / {stages[s]['cpu_s']} cpu-s ({stages[s]['peak_mb']} MB)"  # type: ignore[index]
            for s in STAGES
        ]
        ref = r["implicit"]
        total = f"{r['total_s']} s / {r['total_cpu_s']} cpu-s"
        ref_cpu = ref.get("fit_cpu", 0) + ref.get("recommend_cpu", 0)  # type: ignore[attr-defined]
        reference = f"{ref['fit']} + {ref['recommend']} s / {ref_cpu:.1f} cpu-s"  # type: ignore[index]
        ratio = f"{r['ratio_to_implicit']}× / {r.get('cpu_ratio_to_implicit', '?')}×"
        rows.append(
            f"| {r['customers']:,} | {r['lines']:,} | " + " | ".join(cells)
            + f" | {total} | {r['peak_mb']:,} | {reference} | {ratio} |"
        )  # fmt: skip
    return "\n".join(rows)


def plot(results: list[dict[str, object]], path: Path) -> None:
    """CPU seconds per stage against customers (log-log), the total and implicit's ALS fit + recommend.

    CPU seconds, not wall clock: on a shared machine the wall clock measures the other tenants as much as the work.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [int(r["customers"]) for r in results]  # type: ignore[call-overload]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for stage in STAGES:
        ax.plot(sizes, [r["stages"][stage]["cpu_s"] for r in results], marker="o", label=stage)  # type: ignore[index]
    ax.plot(sizes, [r["total_cpu_s"] for r in results], marker="s", color="black", label="total")
    reference = [r["implicit"]["fit_cpu"] + r["implicit"]["recommend_cpu"] for r in results]  # type: ignore[index]
    ax.plot(sizes, reference, linestyle="--", color="grey", label="implicit ALS fit + recommend")
    ax.set(xscale="log", yscale="log", xlabel="customers (20 lines each)", ylabel="CPU seconds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="10000,100000", help="comma-separated customer counts")
    parser.add_argument("--work", type=Path, default=Path(".centric/bench_scale"), help="data and artifacts here")
    parser.add_argument("--plot", type=Path, default=None, help="write the cost curve here (PNG/SVG)")
    parser.add_argument("--json", type=Path, default=None, help="append the figures of each size to this file")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    results = []
    for customers in (int(x) for x in args.customers.split(",")):
        result = run_size(customers, args.work)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.json:
            with args.json.open("a") as handle:
                handle.write(json.dumps(result) + "\n")
    print(table(results))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
