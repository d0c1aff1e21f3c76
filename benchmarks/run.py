"""Side-by-side MLP training benchmark: deltaprop against scikit-learn, PyTorch and JAX (CPU).

    python -m benchmarks.run [--quick] [--workloads toy digits ...] [--engines ...] [--json F]

Every engine trains the same network from the same θ_0 on the same float32 data with the
same algorithm; trials are interleaved across engines (the order rotates) and each trial
first waits until other processes leave the CPUs alone. Reported per workload and engine:
the median time per step (min–max over trials), GEMM GFLOP/s and its share of the NumPy
sgemm rate measured in the same run (each after the same wait for quiet), the memory an
engine kept from its untimed first run and the peak RSS rise during a trial above that,
the final objective J
(evaluated by one float64 formula for all engines) and deltaprop's speed ratio to each peer.
For every workload the run also times its GEMMs alone, on the same shapes with deltaprop's
threads and blocks (Adam: one block per batch): what this BLAS alone takes of deltaprop's
step or epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import deltaprop as dp

from . import engines, measure, memory
from .workloads import NAMES, Workload, select

# Relative spread of the final J allowed across engines. Full-batch GD: float32 rounding,
# accumulated over the run's steps. Adam's update m/(√v + ε) is nearly η·sign(g) where g is
# tiny, so rounding differences grow over an epoch's hundreds of steps (one batch: ~1e-5;
# deltaprop and scikit-learn, with the same ε placement, agree to 7 digits for 100 batches).
# (GD: the spreads seen are ≤ 2.1e-7; leaving out the λw term moves J by 7.6e-6 to 5.1e-5.)
OBJECTIVE_RTOL = {"gd": 2e-6, "adam": 1e-2}
# The workloads whose target is a share of the sgemm rate, and those whose target is a
# multiple of PyTorch eager's speed (bound by per-call overhead).
GEMM_BOUND = ("mnist-shaped", "wide")
OVERHEAD_BOUND = ("toy", "digits")


def final_objective(w: Workload, X, y, theta: np.ndarray) -> float:
    """J(θ) in float64, the same formula for every engine's final parameters."""
    net = w.network().astype("float64")
    np.copyto(net.params, theta)
    return dp.Objective(net, l2=w.l2).value(X, y)


def bench_workload(w: Workload, names: list[str], args, sgemm: float, notes: list[str]) -> dict:
    """Interleaved trials of every engine on ``w``; statistics, ratios and objectives."""
    X, y = w.data()
    theta0 = w.network().params
    built, kept = {}, {}
    for name in names:
        try:
            engine = engines.CLASSES[name](w, X, y, theta0)
            engine.reset()
            before = measure.rss_mb("VmRSS")
            engine.run()  # first-call costs (compiling, lazy loading) stay untimed
        except Exception as err:  # an engine that cannot run this workload is noted, not fatal
            notes.append(f"{name} skipped on {w.name}: {type(err).__name__}: {err}"[:300])
        else:
            built[name] = engine
            kept[name] = max(0.0, measure.rss_mb("VmRSS") - before)  # workspaces, caches
    times = {name: [] for name in built}
    peaks = {name: 0.0 for name in built}
    loads = []
    order = list(built)
    for trial in range(w.trials):
        shift = trial % len(order)
        for name in order[shift:] + order[:shift]:
            engine = built[name]
            load, _ = measure.wait_quiet(args.quiet_below, args.max_wait)
            loads.append(load)
            engine.reset()
            measure.reset_peak()
            rss = measure.rss_mb("VmRSS")
            start = time.perf_counter()
            engine.run()
            times[name].append((time.perf_counter() - start) / w.steps)
            peaks[name] = max(peaks[name], measure.rss_mb() - rss)
    result = {"name": w.name, "n": w.n, "net": w.net, "algorithm": w.algorithm}
    result.update(steps=w.steps, trials=w.trials, gemm_gflop=w.gemm_flops / 1e9)
    result["foreign_load_max"] = max((x for x in loads if x == x), default=None)
    if (result["foreign_load_max"] or 0) > args.quiet_below:
        notes.append(
            f"{w.name}: some trials ran while other processes used up to "
            f"{result['foreign_load_max']:.0%} of the CPUs (after waiting {args.max_wait:g} s); "
            "their times are inflated"
        )
    stats = {}
    for name, engine in built.items():
        median = statistics.median(times[name])
        stats[name] = {
            "median_s": median,
            "min_s": min(times[name]),
            "max_s": max(times[name]),
            "times_s": times[name],
            "gflops": w.gemm_flops / median / 1e9,
            "pct_sgemm": 100 * w.gemm_flops / median / 1e9 / sgemm,
            "kept_rss_mb": kept[name],
            "peak_rss_mb": peaks[name],
            "objective": final_objective(w, X, y, engine.params()),
        }
    result["engines"] = stats
    measure.wait_quiet(args.quiet_below, args.max_wait)
    result.update(gemms_alone(w, X, y))
    if "deltaprop" in stats:
        ours = stats["deltaprop"]
        result["ratios"] = {
            name: s["median_s"] / ours["median_s"]
            for name, s in stats.items()
            if name != "deltaprop"
        }
        J = np.array([s["objective"] for s in stats.values()])
        spread = float(np.ptp(J) / abs(ours["objective"]))  # NaN when any J is NaN
        result["objective_rel_spread"] = spread
        result["objective_rtol"] = OBJECTIVE_RTOL[w.algorithm]
        finite = bool(np.isfinite(J).all())
        result["objectives_agree"] = finite and spread <= OBJECTIVE_RTOL[w.algorithm]
    return result


def gemms_alone(w: Workload, X, y) -> dict:
    """A full-batch step's (or a mini-batch epoch's) GEMMs alone, timed on ``w``'s shapes
    with deltaprop's thread count and block height (a mini-batch: one block per batch;
    ``measure.products_gflops``): what the products alone cost with this BLAS, the part of
    the step no arrangement of its other work removes."""
    net = w.network()
    source = dp.sources.ArraySource(X, y)
    threads = dp.objective.LocalBackend().threads_for(net, source, w.batch_size)
    rows = w.batch_size or dp.objective.DEFAULT_CHUNK // threads
    gflops = measure.products_gflops(w, rows, threads)
    return {"products_gflops": gflops, "products_s": w.gemm_flops / gflops / 1e9}


def duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            return f"{seconds / scale:.3g} {unit}"
    return ""


def report(results: dict) -> str:
    """The Markdown tables: medians (min–max) per engine, then deltaprop's details."""
    names = [e for e in results["engines"] if any(e in r["engines"] for r in results["workloads"])]
    rates = results["sgemm_rates"]
    lines = [
        f"machine: {results['machine']}; {results['date']}; NumPy sgemm "
        f"{results['sgemm_gflops']:.0f} GFLOP/s (median of {len(rates)} in this run, "
        f"{min(rates):.0f}–{max(rates):.0f}); load average {results['loadavg']}",
        "",
        "| workload | n | net | " + " | ".join(names) + " |",
        "|---|---:|---|" + "---:|" * len(names),
    ]
    for r in results["workloads"]:
        cells = []
        for name in names:
            s = r["engines"].get(name)
            cells.append(
                f"{duration(s['median_s'])} ({duration(s['min_s'])}–{duration(s['max_s'])})"
                if s
                else "—"
            )
        label = r["name"] + (" (1 epoch)" if r["algorithm"] == "adam" else " (per step)")
        lines.append(f"| {label} | {r['n']:,} | {r['net']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| workload | engine | GFLOP/s | % of sgemm | kept by warm-up (MiB) "
        "| peak RSS rise (MiB) | final J | deltaprop speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["workloads"]:
        for name, s in r["engines"].items():
            ratio = "" if name == "deltaprop" else f"{r['ratios'][name]:.2f}x"
            lines.append(
                f"| {r['name']} | {name} | {s['gflops']:.1f} | {s['pct_sgemm']:.0f}% | "
                f"{s['kept_rss_mb']:,.0f} | {s['peak_rss_mb']:,.0f} | {s['objective']:.7g} "
                f"| {ratio} |"
            )
        per = "an epoch" if r["algorithm"] == "adam" else "a step"
        lines.append(
            f"| {r['name']} | deltaprop's GEMMs alone | {r['products_gflops']:.1f} | "
            f"{r['products_pct_sgemm']:.0f}% | | | ({duration(r['products_s'])} {per}) | |"
        )
        if "objectives_agree" in r:
            verdict = "agree" if r["objectives_agree"] else "DISAGREE"
            lines.append(
                f"| {r['name']} | objectives {verdict} | | | | | rel. spread "
                f"{r['objective_rel_spread']:.1e} (≤ {r['objective_rtol']:g}) | |"
            )
    if results.get("memory"):
        lines += ["", memory.table(results["memory"])]
    lines += ["", *targets(results)]
    if results["notes"]:
        lines += ["", "notes:", *(f"- {note}" for note in results["notes"])]
    return "\n".join(lines)


def targets(results: dict) -> list[str]:
    """The issue's targets, each with the measured figure and met / not met."""
    out = ["targets (medians of this run):"]
    for r in results["workloads"]:
        ratios = r.get("ratios")
        if not ratios:
            continue
        best = min(ratios, key=ratios.get)
        out.append(f"- {r['name']}: {ratios[best]:.2f}x the fastest peer ({best})")
        if r["name"] in GEMM_BOUND:
            pct = r["engines"]["deltaprop"]["pct_sgemm"]
            alone = r["products_pct_sgemm"]
            out.append(
                f"- {r['name']}: {pct:.0f}% of sgemm (target ≥ 85%; its GEMMs alone: {alone:.0f}%)"
            )
        if r["name"] in OVERHEAD_BOUND and "pytorch" in ratios:
            eager = r["engines"]["pytorch"]["median_s"] / r["products_s"]
            out.append(
                f"- {r['name']}: {ratios['pytorch']:.2f}x PyTorch eager (target ≥ 3x; "
                f"PyTorch eager's step takes {eager:.2f}x deltaprop's GEMMs alone)"
            )
        if r["algorithm"] == "adam" and "scikit-learn" in ratios:
            theirs = r["engines"]["scikit-learn"]["median_s"] / r["products_s"]
            out.append(
                f"- adam: {ratios['scikit-learn']:.2f}x scikit-learn (target ≥ 2x; "
                f"scikit-learn's epoch takes {theirs:.2f}x deltaprop's GEMMs alone)"
            )
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, few trials (< 1 min)")
    parser.add_argument("--workloads", nargs="+", choices=NAMES, default=None)
    parser.add_argument("--engines", nargs="+", choices=engines.ENGINES, default=None)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--quiet-below", type=float, default=0.15, help="foreign CPU share")
    parser.add_argument(
        "--max-wait", type=float, default=None, help="seconds to wait per trial (0: no check)"
    )
    args = parser.parse_args(argv)
    if args.max_wait is None:
        args.max_wait = 2.0 if args.quick else 120.0
    wanted = args.engines or [e for e in engines.ENGINES if not (args.quick and "compile" in e)]
    notes, names = [], []
    if args.quick and not args.engines:
        notes.append("--quick leaves out torch.compile (its compile takes longer than the run)")
    for name in wanted:
        reason = engines.missing(name)
        (notes.append(f"{name} skipped: {reason}") if reason else names.append(name))
    forced = list(measure.blas_overrides())
    if forced:
        notes.append(
            f"{' and '.join(forced)} set in the environment: OpenBLAS runs the kernels named "
            "there, not those it picks for this CPU; to measure the BLAS as it runs by itself, "
            f"unset them in the benchmark's command alone (env -u {' -u '.join(forced)} ...)"
        )
    sgemm_size = 1024 if args.quick else 2048

    def sgemm() -> float:  # after the same wait for quiet CPUs as every trial
        measure.wait_quiet(args.quiet_below, args.max_wait)
        return measure.sgemm_gflops(sgemm_size)

    rates = [sgemm()]
    results = {
        "machine": f"{measure.cpu_model()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, NumPy {np.__version__} with {measure.blas()}, "
        f"{kernel_path()}",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "loadavg": measure.loadavg(),
        "engines": names,
        "workloads": [],
        "notes": notes,
    }
    for w in select(args.workloads, args.quick):
        print(f"[{time.strftime('%H:%M:%S')}] {w.name} …", file=sys.stderr, flush=True)
        results["workloads"].append(bench_workload(w, names, args, rates[0], notes))
        rates.append(sgemm())
    results["sgemm_gflops"], results["sgemm_rates"] = statistics.median(rates), rates
    for r in results["workloads"]:  # shares of the run's median sgemm rate
        for s in r["engines"].values():
            s["pct_sgemm"] = 100 * s["gflops"] / results["sgemm_gflops"]
        r["products_pct_sgemm"] = 100 * r["products_gflops"] / results["sgemm_gflops"]
    if args.workloads is None or "memory" in args.workloads:
        print(f"[{time.strftime('%H:%M:%S')}] memory …", file=sys.stderr, flush=True)
        size = (0.25, 1.0, 1) if args.quick else (2.0, 1.0, 2)
        try:
            results["memory"] = memory.run(*size, chunk=dp.objective.DEFAULT_CHUNK)
        except RuntimeError as err:  # the timing tables are still worth printing
            notes.append(f"memory workload failed: {err}"[:2000])
    results["loadavg"] += f" → {measure.loadavg()}"
    results["report"] = report(results)
    print(results["report"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


def kernel_path() -> str:
    """Which element-wise path deltaprop runs here: its Numba kernels or NumPy alone."""
    if dp.fused.kernels() is None:
        return "deltaprop: NumPy only (no Numba, or DELTAPROP_NUMBA=0)"
    import numba

    return f"deltaprop: Numba {numba.__version__} kernels"


if __name__ == "__main__":
    main()
