"""Out-of-core full-batch gradient descent: a ``.npy`` dataset at least twice the memory the
process may use, trained block by block, against the same data held in memory.

    python -m benchmarks.out_of_core [--limit-gb 1] [--ratio 2] [--steps 3] [--dir /tmp/x]

Writes X (n × 784 float32, ≥ ratio × limit bytes) and labels to ``--dir`` (a temporary folder
by default, removed afterwards), then runs two child processes: one under
``resource.setrlimit(RLIMIT_AS, limit)`` that trains from the files (``NpySource``), and one
without a limit that loads everything first. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [784, 256, 10]
GB = 1024**3


def write_data(folder: Path, n: int, block: int = 50_000) -> None:
    """X.npy and y.npy written block by block (the writer never holds more than a block)."""
    import numpy as np

    rng = np.random.default_rng(0)
    header = {"descr": "<f4", "fortran_order": False, "shape": (n, SIZES[0])}
    with open(folder / "X.npy", "wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        for start in range(0, n, block):
            f.write(rng.standard_normal((min(block, n - start), SIZES[0]), np.float32).tobytes())
    np.save(folder / "y.npy", rng.integers(0, 10, n).astype(np.int8))


def child(mode: str, folder: Path, steps: int, chunk: int) -> dict:
    """Train ``steps`` full-batch steps; time them and report the peak resident memory."""
    import numpy as np

    import deltaprop as dp
    from deltaprop.backprop import Workspace

    net = dp.Network(SIZES, seed=0)
    objective = dp.Objective(net, chunk_size=chunk)
    start = time.perf_counter()
    if mode == "files":
        data = dp.sources.NpySource(folder / "X.npy", folder / "y.npy")
    else:
        data = objective.open(np.load(folder / "X.npy"), np.load(folder / "y.npy"))
    objective.prepare(data)  # the files: one validation pass, block by block
    prepare = time.perf_counter() - start
    optimizer, times = dp.GradientDescent(0.01), []
    for _ in range(steps):
        start = time.perf_counter()
        optimizer.step(net.params, objective.evaluate(data)[1])
        times.append(time.perf_counter() - start)
    ws = Workspace(net, chunk)
    buffers = [a for a in vars(ws).values() if isinstance(a, np.ndarray)]
    buffers += [a for v in vars(ws).values() if isinstance(v, list) for a in v]
    return {
        "prepare_s": prepare,
        "step_s": sorted(times)[len(times) // 2],
        "objective": objective.last.objective,
        "peak_rss_mb": peak_rss_mb(),
        "workspace_mb": sum(a.nbytes for a in buffers) / 2**20,
    }


def peak_rss_mb() -> float:
    """VmHWM, this process's peak resident memory (unlike ru_maxrss, not inherited via exec)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-gb", type=float, default=1.0, help="RLIMIT_AS of the child")
    parser.add_argument("--ratio", type=float, default=2.0, help="data size / limit")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the data")
    parser.add_argument("--child", choices=["files", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "files":
            limit = int(args.limit_gb * GB)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        print(json.dumps(child(args.child, args.dir, args.steps, args.chunk)))
        return

    n = int(args.ratio * args.limit_gb * GB / (4 * SIZES[0])) + 1
    folder = args.dir or Path(tempfile.mkdtemp(prefix="deltaprop-ooc-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if not (folder / "X.npy").exists():
            write_data(folder, n)
        size = os.path.getsize(folder / "X.npy") + os.path.getsize(folder / "y.npy")
        print("load average before:", open("/proc/loadavg").read().strip())
        results = {}
        for mode in ("files", "memory"):
            command = [sys.executable, "-m", "benchmarks.out_of_core", "--child", mode]
            command += ["--dir", str(folder), "--steps", str(args.steps)]
            command += ["--chunk", str(args.chunk), "--limit-gb", str(args.limit_gb)]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"the {mode} run failed:\n{out.stderr}")
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print("load average after: ", open("/proc/loadavg").read().strip())
    finally:
        if args.dir is None:
            shutil.rmtree(folder)
    files, memory = results["files"], results["memory"]
    print(
        f"\nn = {n:,} rows × 784 float32 = {size / GB:.2f} GiB on disk; "
        f"file run under RLIMIT_AS = {args.limit_gb:g} GiB; block {args.chunk} rows "
        f"(workspace {files['workspace_mb']:.1f} MiB)\n"
    )
    print("| data | limit | validation pass (s) | s/step | peak RSS (MiB) |\n|---|---|---|---|---|")
    print(
        f"| .npy files, block by block | {args.limit_gb:g} GiB | {files['prepare_s']:.1f} | "
        f"{files['step_s']:.2f} | {files['peak_rss_mb']:.0f} |"
    )
    print(
        f"| in memory (np.load) | none | {memory['prepare_s']:.1f} | "
        f"{memory['step_s']:.2f} | {memory['peak_rss_mb']:.0f} |"
    )
    print(
        f"\nper-step time, files / memory: {files['step_s'] / memory['step_s']:.2f}; "
        f"same J after {args.steps} steps: {files['objective'] == memory['objective']}"
    )


if __name__ == "__main__":
    main()
