"""Where ``centric train`` scores every customer: in this process, over a Dask cluster, or left to shard jobs.

- ``local``: one process (the default);
- ``dask``: customer ranges become tasks on a Dask distributed cluster, a ``LocalCluster`` of ``workers``
  processes on this machine or the scheduler at ``scheduler`` (``tcp://host:8786``). The fitted model is scattered
  to every worker once (no shared file system needed); each task scores a range and returns its frame;
- ``shards``: no scoring here; run ``centric score --shard i/n`` for each shard on any job runner, then
  ``centric publish``.

Ranges are cut at multiples of the models' scoring batch (``score.Shard.customer_range``), so every engine scores
exactly the batches one process would: the recommendations are the same rows, byte for byte.

Why Dask distributed rather than Ray: the work is a map of one function over customer ranges of a NumPy/SciPy
model, which Dask's futures do directly; ``distributed`` is pure Python (a few MB of wheels over packages we mostly
have), starts a local cluster in about a second and runs on 2 cores, where Ray brings a much larger wheel with its own
object store and raylet processes, a heavier footprint than the work needs here. Any job runner (Kubernetes
indexed Jobs, Slurm arrays, Airflow) can instead run the ``shards`` form without any engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import polars as pl

from recsys.models import Recommender
from recsys.models.base import BATCH_SIZE
from training.jobs.score import Shard, score_range

ENGINES = ("local", "dask", "shards")
TASKS_PER_WORKER = 4  # a few ranges per worker: balances uneven ranges without many tiny tasks
LOCAL_CHUNK = 256 * BATCH_SIZE  # customers scored between two progress reports of the local engine (65,536)


def _range_task(model: Recommender, start: int, stop: int, k: int) -> pl.DataFrame:
    from threadpoolctl import threadpool_limits

    # one BLAS thread per task: the engine runs one task per core, so more threads would only contend
    with threadpool_limits(limits=1):
        return score_range(model, start, stop, k)


def score_all(
    model: Recommender,
    k: int,
    *,
    engine: str = "local",
    workers: int = 2,
    scheduler: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    threads: int = 1,
) -> pl.DataFrame | None:
    """Return every customer's top-``k`` (``customer_id, item_id, rank, score``), or ``None`` for ``shards``.

    ``local`` scores ``threads`` batches at once (``recsys.models.parallel``), ``LOCAL_CHUNK`` customers between two
    ``on_progress`` calls; the rows are the same as with one thread.

    Raises ``ValueError`` for an unknown engine, ``ImportError`` with the install command when Dask is missing.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown scoring engine {engine!r}; choose from {', '.join(ENGINES)}")
    if engine == "shards":
        return None
    if engine == "local":
        return _score_locally(model, k, threads, on_progress or (lambda _d, _t: None))
    return _score_on_dask(model, k, workers, scheduler, on_progress or (lambda _d, _t: None))


def _score_locally(model: Recommender, k: int, threads: int, on_progress: Callable[[int, int], None]) -> pl.DataFrame:
    total = model.n_customers
    frames = []
    for start in range(0, max(total, 1), LOCAL_CHUNK):  # chunks of whole batches: the same batches as one call
        frames.append(score_range(model, start, min(start + LOCAL_CHUNK, total), k, threads=threads))
        on_progress(min(start + LOCAL_CHUNK, total), total)
    return pl.concat(frames, how="vertical")


def _score_on_dask(
    model: Recommender, k: int, workers: int, scheduler: str | None, on_progress: Callable[[int, int], None]
) -> pl.DataFrame:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # an optional dependency
        raise ImportError("--engine dask needs Dask distributed: pip install 'centric[dask]'") from exc
    with contextlib.ExitStack() as stack:
        if scheduler:
            client: Any = stack.enter_context(Client(scheduler))
        else:
            cluster = stack.enter_context(
                LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=40)
            )
            client = stack.enter_context(Client(cluster))
        cores = max(sum(client.nthreads().values()), 1)
        count = cores * TASKS_PER_WORKER
        ranges = [Shard(i, count).customer_range(model.n_customers) for i in range(count)]
        ranges = [(start, stop) for start, stop in ranges if stop > start]
        remote = client.scatter(model, broadcast=True)
        futures = [client.submit(_range_task, remote, start, stop, k, pure=False) for start, stop in ranges]
        for done, _ in enumerate(as_completed(futures), start=1):
            on_progress(done, len(futures))
        frames = client.gather(futures)  # in range order, whatever order they finished in
    return pl.concat(frames, how="vertical") if frames else score_range(model, 0, 0, k)
