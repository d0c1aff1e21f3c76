"""The memory workload: full-batch gradient descent on a ``.npy`` file far larger than the chunk.

Reuses ``benchmarks.out_of_core``: the file is written block by block, then one child process
trains from it under ``RLIMIT_AS`` (its address space may not hold the data) and one from the
same data loaded into memory. The bound checked: the file run's peak RSS stays below the
limit and holds no copy of the data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import out_of_core


def run(data_gb: float, limit_gb: float, steps: int, chunk: int) -> dict:
    """Both child runs; sizes in MiB, times in seconds per step."""
    n = int(data_gb * out_of_core.GB / (4 * out_of_core.SIZES[0])) + 1
    folder = Path(tempfile.mkdtemp(prefix="deltaprop-bench-"))
    try:
        out_of_core.write_data(folder, n)
        data_mb = sum(os.path.getsize(folder / f) for f in ("X.npy", "y.npy")) / 2**20
        result = {"n": n, "net": "-".join(map(str, out_of_core.SIZES)), "chunk": chunk}
        result.update(data_mb=data_mb, limit_mb=limit_gb * 1024)
        for mode in ("files", "memory"):
            command = [sys.executable, "-m", "benchmarks.out_of_core", "--child", mode]
            command += ["--dir", str(folder), "--steps", str(steps), "--chunk", str(chunk)]
            command += ["--limit-gb", str(limit_gb)]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"the {mode} run failed:\n{out.stderr[-2000:]}")
            result[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    files, memory = result["files"], result["memory"]
    # the file run holds no copy of the data: its peak stays under the limit and at least
    # half the data below the in-memory run's (which is data + interpreter + workspaces)
    result["bounded"] = bool(
        files["peak_rss_mb"] < result["limit_mb"]
        and files["peak_rss_mb"] < memory["peak_rss_mb"] - data_mb / 2
    )
    result["objectives_agree"] = abs(files["objective"] - memory["objective"]) <= 1e-6 * abs(
        memory["objective"]
    )
    return result


def table(result: dict) -> str:
    """Markdown rows for the report."""
    lines = [
        f"memory: n = {result['n']:,} rows × 784 float32 ({result['data_mb']:,.0f} MiB on disk), "
        f"net {result['net']}, chunk {result['chunk']} rows "
        f"(workspace {result['files']['workspace_mb']:.1f} MiB)",
        "",
        "| data | address-space limit | s/step | peak RSS (MiB) | J |",
        "|---|---|---:|---:|---:|",
    ]
    for mode, limit in (("files", f"{result['limit_mb']:,.0f} MiB"), ("memory", "none")):
        r = result[mode]
        label = ".npy read block by block" if mode == "files" else "in memory (np.load)"
        lines.append(
            f"| {label} | {limit} | {r['step_s']:.3g} | {r['peak_rss_mb']:,.0f} | "
            f"{r['objective']:.7g} |"
        )
    lines.append(
        f"\nbounded peak memory: {'yes' if result['bounded'] else 'NO'}; "
        f"same J from the file and from memory: {'yes' if result['objectives_agree'] else 'NO'}"
    )
    return "\n".join(lines)
