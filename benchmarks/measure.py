"""Measuring on a shared machine: foreign CPU load, peak resident memory, the sgemm rate."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np


def _cpu_busy() -> tuple[float, float]:
    """(busy seconds of all CPUs, busy seconds of this process) so far."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / ticks  # all but idle and iowait
    own = os.times()
    return busy, own.user + own.system


def foreign_load(interval: float = 0.3) -> float:
    """Fraction of the machine's CPUs busy with other processes over ``interval`` seconds."""
    busy0, own0 = _cpu_busy()
    start = time.perf_counter()
    time.sleep(interval)
    busy1, own1 = _cpu_busy()
    wall = time.perf_counter() - start
    return max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall * (os.cpu_count() or 1))


def wait_quiet(threshold: float, max_wait: float) -> tuple[float, float]:
    """Wait until other processes use less than ``threshold`` of the CPUs (or ``max_wait``
    seconds passed); returns (the last foreign load measured, seconds waited).
    ``max_wait`` ≤ 0 neither waits nor measures (the load is then NaN)."""
    if max_wait <= 0:
        return float("nan"), 0.0
    start = time.perf_counter()
    load = foreign_load()
    while load > threshold and time.perf_counter() - start < max_wait:
        time.sleep(1.0)
        load = foreign_load()
    return load, time.perf_counter() - start


def cpu_model() -> str:
    """The CPU's model name, family, model and widest vector extension (/proc/cpuinfo),
    else the machine type: runs on different CPUs rank the engines differently (a VM may
    call a Zen 2 and a Zen 5 both just "AMD EPYC"), so every report names its CPU."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if not key.strip():
            break  # the first processor's block ends
        fields[key.strip()] = value.strip()
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    details = [platform.machine()]
    if "cpu family" in fields and "model" in fields:
        details.append(f"family {fields['cpu family']} model {fields['model']}")
    flags = set(fields.get("flags", "").split())
    widest = next((name for name in ("avx512f", "avx2", "avx") if name in flags), None)
    if widest:
        details.append(widest.upper().replace("512F", "-512"))
    return f"{fields['model name']} ({', '.join(details)})"


BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_overrides() -> dict[str, str]:
    """The environment's settings that override OpenBLAS's own choice of kernels."""
    return {name: os.environ[name] for name in BLAS_OVERRIDES if name in os.environ}


def blas() -> str:
    """NumPy's BLAS, the kernels it runs and its threads (threadpoolctl), and any environment
    setting that overrides OpenBLAS's own choice of kernels: on the 2-core AMD EPYC (AVX-512)
    OPENBLAS_CORETYPE=Haswell halves NumPy's sgemm rate (2,048², 2 threads: 227 against 428
    GFLOP/s with the SkylakeX kernels OpenBLAS picks itself)."""
    from threadpoolctl import threadpool_info

    libs = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    text = (
        ", ".join(
            f"{lib['internal_api']} {lib['version']} ({lib.get('architecture') or '?'} kernels, "
            f"{lib['num_threads']} threads)"
            for lib in libs
        )
        or "no BLAS found"
    )
    forced = blas_overrides()
    if forced:
        text += "; set in the environment: " + " ".join(f"{k}={v}" for k, v in forced.items())
    return text


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux ``clear_refs``), so the next peak is this run's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def rss_mb(field: str = "VmHWM") -> float:
    """This process's peak (``VmHWM``) or current (``VmRSS``) resident memory in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def sgemm_gflops(size: int, repeats: int = 5) -> float:
    """NumPy float32 matrix product rate (best of ``repeats``) on size × size matrices."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(A)
    np.matmul(A, B, out=out)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(A, B, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def products_gflops(w, rows: int, threads: int, repeats: int = 3) -> float:
    """The rate of one pass's GEMMs alone (a full-batch step, or a mini-batch epoch with
    ``rows`` the batch size; ``w.gemm_flops``: every layer's forward
    product and weight gradient, and past the first its input delta) on ``w``'s shapes in
    float32, in row-major blocks: ``threads`` threads each take their share of the ``w.n``
    rows in blocks of ``rows``, with single-threaded BLAS when there are several, BLAS's own
    threads when there is one (as deltaprop splits a step); nothing else runs. Best of at
    least ``repeats`` passes and 0.3 s. (Feature-major layers, which deltaprop uses in one
    thread, can make a product a little faster or slower than here.)"""
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    from deltaprop.fused import outer

    share = w.n // threads
    rows = min(rows, share)
    rng = np.random.default_rng(0)
    layers = list(zip(w.sizes[:-1], w.sizes[1:]))

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    def operands() -> tuple:
        weights = [normal(out, inp) for inp, out in layers]
        hidden = [normal(rows, out) for _, out in layers]  # Z^(h), then the logits
        deltas = [normal(rows, out) for _, out in layers]
        return normal(share, w.sizes[0]), weights, hidden, deltas, [0 * W for W in weights]

    def products(X, weights, hidden, deltas, grads) -> None:
        for start in range(0, share - rows + 1, rows):
            Z = [X[start : start + rows], *hidden]
            for h, W in enumerate(weights):
                np.matmul(Z[h], W.T, out=Z[h + 1])
            for h in reversed(range(len(weights))):
                np.matmul(deltas[h].T, Z[h], out=grads[h])
                if h and len(weights[h]) == 1:  # one output: an outer product, as deltaprop's
                    outer(deltas[h], weights[h], deltas[h - 1])
                elif h:
                    np.matmul(deltas[h], weights[h], out=deltas[h - 1])

    data = [operands() for _ in range(threads)]
    limit = threadpool_limits(limits=1, user_api="blas") if threads > 1 else nullcontext()
    best, passes, began = np.inf, 0, time.perf_counter()
    with limit, ThreadPoolExecutor(threads) as pool:
        products(*data[0])  # warm-up
        while passes < repeats or time.perf_counter() - began < 0.3:
            start = time.perf_counter()
            if threads > 1:
                list(pool.map(lambda args: products(*args), data))
            else:
                products(*data[0])
            best, passes = min(best, time.perf_counter() - start), passes + 1
    done = threads * (share // rows) * rows
    return w.gemm_flops * done / w.n / best / 1e9
