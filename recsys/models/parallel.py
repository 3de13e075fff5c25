"""Batches of customers scored on a few threads of one process: the local form of batch scoring.

The work of a batch is NumPy and BLAS calls that release the GIL (the explore model's matmul, the partitions and
reductions of the top-k), so two threads on two cores score nearly twice as many customers a second. Each thread
writes its own rows of the output, and the batches are the same whatever the number of threads.

BLAS runs on one thread per batch whenever there is more than one batch, with one thread here or several (as for
implicit's own fit): the threads here are the parallelism, a BLAS pool per thread would only contend for the same
cores, and OpenBLAS's float32 results depend on how many threads split a product (about 7 % of the scores of a
256-customer batch differ in the last bit between one and two BLAS threads). So the scores do not depend on
``threads`` nor on the machine's number of cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS, Windows
        return max(os.cpu_count() or 1, 1)


def map_threads(fn: Callable[[int], T], starts: Sequence[int], threads: int) -> list[T]:
    """Return ``[fn(s) for s in starts]``, run on ``threads`` threads, in order, with BLAS on one thread (a single
    call: as it is). Raises the first exception a call raised.
    """
    if len(starts) <= 1:
        return [fn(start) for start in starts]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        if threads <= 1:
            return [fn(start) for start in starts]
        with ThreadPoolExecutor(max_workers=min(threads, len(starts))) as pool:
            return list(pool.map(fn, starts))
