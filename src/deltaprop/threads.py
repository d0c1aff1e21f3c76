"""Row-parallel work in one process: a shared thread pool and BLAS thread control.

NumPy releases the GIL inside its array loops and BLAS calls, so threads that each run the
kernel on their own rows, with single-threaded BLAS, put every core to work on the whole
step: the element-wise passes too, which stay on one core while a multi-threaded BLAS waits
between products. BLAS threads are read and limited with threadpoolctl (an optional
dependency; without it everything runs in the calling thread).

A multi-threaded BLAS call leaves OpenBLAS's worker threads spinning for a while, taking a
core from the kernel's threads (measured: the next split step 2x slower, even 0.2 s later),
so a run that splits its rows keeps BLAS single-threaded from its first step to its last.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

_POOL: ThreadPoolExecutor | None = None
_BLAS = None
_LOCK = threading.Lock()
_LIMIT = None  # the single-thread limit in force, if any
_DEPTH = 0  # single_threaded_blas sections open, in any thread
_OUTER = 1  # blas_threads() on entering the outermost one


def _blas():
    """threadpoolctl's controller of the loaded BLAS libraries (None without threadpoolctl)."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _BLAS = False
        else:
            _BLAS = ThreadpoolController().select(user_api="blas")
    return _BLAS or None


def blas_threads() -> int:
    """The BLAS thread count in force now (under any ``threadpool_limits``), else 1."""
    blas = _blas()
    if blas is None or not blas.lib_controllers:
        return 1
    return max(lib.get_num_threads() or 1 for lib in blas.lib_controllers)


def available_threads() -> int:
    """The threads the caller gives us: the BLAS thread count in force outside deltaprop's
    own single-threaded sections (inside one, the count found on entering it)."""
    return _OUTER if _DEPTH else blas_threads()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS limited to one thread per call while the block runs: process-wide and counted,
    so nested or concurrent uses (two trainings in two threads) share one limit, set by the
    first to enter and lifted by the last to leave."""
    global _DEPTH, _OUTER, _LIMIT
    with _LOCK:
        if not _DEPTH:
            _OUTER = blas_threads()
            blas = _blas()
            _LIMIT = blas.limit(limits=1) if blas is not None else None
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if not _DEPTH and _LIMIT is not None:
                _LIMIT.restore_original_limits()
                _LIMIT = None


def run_parallel(tasks: Sequence[Callable[[], object]]) -> list:
    """Each task's result, in order: the first runs in the calling thread, the others in the
    shared pool, all with single-threaded BLAS. Waits for every task before returning or
    raising (Ctrl-C included), so no task outlives the call."""
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="deltaprop")
    with single_threaded_blas():
        futures = [_POOL.submit(task) for task in tasks[1:]]
        interrupted = False
        try:
            first = tasks[0]()
        finally:
            while True:
                try:
                    wait(futures)
                    break
                except KeyboardInterrupt:  # the workers still read θ: let them finish first
                    interrupted = True
        if interrupted:
            raise KeyboardInterrupt
        return [first, *(f.result() for f in futures)]
