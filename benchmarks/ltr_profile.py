"""Where the learned hybrid (``hybrid_ltr``) spends its time and memory, phase by phase, on a synthetic retailer.

    nice -n 10 .venv/bin/python -m benchmarks.ltr_profile --size 100k [--serve-only]

Runs the phases of :meth:`recsys.models.ranker.LearnedHybridRecommender._fit` one after the other, with the model's
default parameters, calling the same functions (``basket_lines``, ``training_frame``, the LightGBM fit,
``candidate_features`` for every customer, the booster's predict), and reports each phase's wall time, the RSS
when it ends and its peak RSS (a sampling thread reads ``/proc/self/status`` every 20 ms). ``--serve-only`` fits
the booster on one cutoff of 2,000 customers instead of ten cutoffs of up to 20,000: the scoring phases are then
measured at full size without the cost of the training frame. Prints a markdown table with the machine, the size,
the command and the load average.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_scale_1m import _data_for, loadavg
from benchmarks.machine import machine
from benchmarks.synthetic_retailer import SIZES, spec_for


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakSampler:
    """A thread sampling this process's RSS; ``reset()`` starts a new phase, ``peak`` is its highest sample."""

    def __init__(self, every_s: float = 0.02) -> None:
        self.peak = 0.0
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(self._every)

    def reset(self) -> None:
        self.peak = _rss_mb()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def profile(size: str, serve_only: bool, data_dir: Path) -> list[dict[str, Any]]:
    """Run the phases; return one dict per phase (name, seconds, rss_mb at the end, peak_mb, rows)."""
    import numpy as np

    from recsys.data import load_transactions
    from recsys.matrix import build_matrix
    from recsys.models.basket_features import CUSTOMER, basket_lines, candidate_features, training_frame
    from recsys.models.ranker import LearnedHybridRecommender

    info = _data_for(spec_for(size), data_dir)
    model = LearnedHybridRecommender()
    sampler = PeakSampler()
    phases: list[dict[str, Any]] = []
    state: dict[str, Any] = {}

    def phase(name: str, work: Callable[[], Any]) -> Any:
        sampler.reset()
        load = loadavg()
        started, cpu = time.perf_counter(), time.process_time()
        value = work()
        rows = getattr(value, "height", None) if not isinstance(value, np.ndarray) else int(value.shape[0])
        phases.append(
            {
                "phase": name,
                "seconds": time.perf_counter() - started,
                "cpu_s": time.process_time() - cpu,
                "rss_mb": _rss_mb(),
                "peak_mb": max(sampler.peak, _rss_mb()),
                "rows": rows,
                "load": load,
            }
        )
        print(f"{name}: {phases[-1]}", file=sys.stderr)
        return value

    tx = phase("load + validate", lambda: load_transactions(info["transactions"], catalog=info["catalog"]))
    state["tx"] = tx.transactions
    counts = phase("matrix", lambda: build_matrix(state["tx"], weighting="count"))
    lines = phase("basket_lines", lambda: basket_lines(state["tx"], counts.customers, counts.items))
    params = (model.target_baskets, model.candidates, model.explore_candidates, None)
    if serve_only:  # a booster of the same shape (rounds, leaves) from one cutoff: predict costs the same
        params = (1, *params[1:])
        chosen = lines.get_column(CUSTOMER).unique().sort().head(2_000)
        label = "training_frame (1 cutoff, 2,000 customers)"
    else:
        chosen = model._training_customers(lines)
        label = "training_frame (10 cutoffs)"
    state["train"] = phase(label, lambda: training_frame(lines, *params, chosen))
    model.booster_text_ = phase("lightgbm fit", lambda: model._train(state.pop("train")))
    serve = phase(
        "candidate_features (every customer)",
        lambda: candidate_features(lines, 0, model.candidates, model.explore_candidates),
    )
    phase("booster predict (every candidate)", lambda: model._predict(serve))
    sampler.stop()
    return phases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(SIZES), default="100k")
    parser.add_argument("--serve-only", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/centric-synthetic"))
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    phases = profile(args.size, args.serve_only, args.data_dir)
    command = "python -m benchmarks.ltr_profile " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"Machine: {machine()}; data: {args.size} customers; command: `{command}`\n")
    print(
        "| phase | rows | wall time | CPU time | RSS after | peak RSS | load at start |\n|---|---|---|---|---|---|---|"
    )
    for p in phases:
        rows = f"{p['rows']:,}" if p["rows"] is not None else ""
        print(
            f"| {p['phase']} | {rows} | {p['seconds']:.1f} s | {p['cpu_s']:.1f} s | {p['rss_mb']:,.0f} MB | "
            f"{p['peak_mb']:,.0f} MB | "
            f"{p['load']} |"
        )


if __name__ == "__main__":
    main()
