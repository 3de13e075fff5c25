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
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

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
    with one_blas_thread():
        if threads <= 1:
            return [fn(start) for start in starts]
        with ThreadPoolExecutor(max_workers=min(threads, len(starts))) as pool:
            return list(pool.map(fn, starts))


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while any caller, in any thread of the process, is inside; restored when the last leaves.

    The BLAS limit is process-wide and each ``threadpool_limits`` restores what it saw on entry, so two that overlap
    (two ``recommend`` calls on Dask's or a server's threads) lift the limit under the other one, and the last to
    leave restores the first one's "1" as the process's setting. Here the first caller sets the limit, the last one
    restores it, whichever thread that is (threadpoolctl >= 3.8 lets only the thread that set a limit change it
    again, so that thread's claim is cleared around the restore).
    """
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            from threadpoolctl import threadpool_limits

            _blas_limiter = threadpool_limits(1, "blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _release_blas_control()
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
                _release_blas_control()


def _release_blas_control() -> None:
    import threadpoolctl

    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:  # threadpoolctl >= 3.8
        clear(force=True)
