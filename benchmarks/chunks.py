"""The chunk-size curve: deltaprop's time per full-batch gradient against ``chunk_size``.

    python -m benchmarks.chunks [--workloads mnist-shaped wide] [--sizes 1024 2048 ...]

Small chunks keep the element-wise work in cache but give BLAS thin matrices; large ones the
reverse (and cost O(chunk × width) memory). Trials are interleaved across sizes; the table
gives the median seconds per gradient, GFLOP/s and the share of the sgemm rate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import deltaprop as dp

from . import measure
from .workloads import FULL, NAMES

SIZES = [512, 1024, 2048, 4096, 8192, 16384]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=NAMES, default=["mnist-shaped", "wide"])
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args(argv)
    sgemm = measure.sgemm_gflops(2048)
    print(f"NumPy sgemm {sgemm:.0f} GFLOP/s; load average {measure.loadavg()}\n")
    print("| workload | chunk | s/gradient (min–max) | GFLOP/s | % of sgemm |")
    print("|---|---:|---|---:|---:|")
    for w in (w for w in FULL if w.name in args.workloads):
        X, y = w.data()
        runs = {}
        for size in args.sizes:
            objective = dp.Objective(w.network(), l2=w.l2, chunk_size=size)
            runs[size] = (objective, objective.open(X, y), [])
            objective.evaluate(runs[size][1])  # warm: workspace allocated and touched
        for _ in range(args.trials):
            for objective, source, times in runs.values():
                measure.wait_quiet(0.15, 60.0)
                with objective.blas_for_run(source):  # as fit holds it
                    start = time.perf_counter()
                    objective.evaluate(source)
                    times.append(time.perf_counter() - start)
        for size, (_, _, times) in runs.items():
            median = statistics.median(times)
            rate = w.gemm_flops / median / 1e9
            print(
                f"| {w.name} | {size} | {median:.3f} ({min(times):.3f}–{max(times):.3f}) | "
                f"{rate:.0f} | {100 * rate / sgemm:.0f}% |"
            )


if __name__ == "__main__":
    main()
