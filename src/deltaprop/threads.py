"""Row-parallel work in one process: a shared thread pool and BLAS thread control.

NumPy releases the GIL inside its array loops and BLAS calls, so threads that each run the
kernel on their own rows, with single-threaded BLAS, put every core to work on the whole
step: the element-wise passes too, which stay on one core while a multi-threaded BLAS waits
between products. BLAS threads are read and limited with threadpoolctl (an optional
dependency; without it every task runs in the calling thread).

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
_LOCAL = threading.local()  # per thread: depth of single_threaded_blas, outer thread count
_OWNER: threading.Thread | None = None  # the thread whose section holds the limit


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
    return _LOCAL.outer if getattr(_LOCAL, "depth", 0) else blas_threads()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS limited to one thread per call while the block runs (nested uses cost nothing).

    The setting is process-wide and threadpoolctl lets one thread at a time change it, so one
    thread owns the limit: the first to enter sets it and lifts it when it leaves. A thread
    entering meanwhile runs under the owner's limit while it lasts and changes nothing, so no
    setting is ever lifted by a thread that did not make it; ``run_parallel`` checks that
    the limit holds before it splits.
    """
    global _OWNER
    depth = getattr(_LOCAL, "depth", 0)
    if not depth:
        _LOCAL.outer = blas_threads()
    blas = _blas()
    with _LOCK:
        owner = not depth and _OWNER is None and blas is not None
        if owner:
            _OWNER = threading.current_thread()
    try:
        with blas.limit(limits=1) if owner else contextlib.nullcontext():
            _LOCAL.depth = depth + 1
            try:
                yield
            finally:
                _LOCAL.depth = depth
    finally:
        if owner:
            with _LOCK:
                _OWNER = None


def run_parallel(tasks: Sequence[Callable[[], object]]) -> list:
    """Each task's result, in order: the first runs in the calling thread, the others in the
    shared pool, all with single-threaded BLAS. Waits for every task before returning or
    raising (Ctrl-C included: it is raised once they are done), so no task outlives the call.
    Where BLAS cannot be limited to one thread from here (no threadpoolctl, or another thread
    holds the setting), the tasks run in turn in the calling thread instead: the same ranges
    without oversubscribing the cores (only the multi-threaded BLAS's rounding can differ).
    """
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="deltaprop")
    with single_threaded_blas():
        blas = _blas()
        if blas is None or not blas.lib_controllers or blas_threads() > 1:
            return [task() for task in tasks]
        futures, interrupted = [], False
        try:
            for task in tasks[1:]:
                futures.append(_POOL.submit(task))
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
