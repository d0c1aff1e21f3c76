"""The benchmark suite's quick mode, deltaprop against scikit-learn: report structure and the
same computation (final objectives agree). No timing assertions: the machine is shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # named in the report when set
WORKLOADS = ["toy", "digits", "mnist-shaped", "wide", "regression", "adam-minibatch"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--max-wait", "0"]
    command += ["--engines", "deltaprop", "scikit-learn", "--json", str(out)]
    command += ["--workloads", *WORKLOADS, "memory"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(out.read_text())
    data["stdout"] = run.stdout
    return data


def test_every_workload_has_both_engines_with_statistics(results):
    assert [r["name"] for r in results["workloads"]] == WORKLOADS
    for r in results["workloads"]:
        assert set(r["engines"]) == {"deltaprop", "scikit-learn"}
        assert r["gemm_gflop"] > 0
        for s in r["engines"].values():
            assert len(s["times_s"]) == r["trials"]
            assert s["min_s"] <= s["median_s"] <= s["max_s"]
            assert s["gflops"] > 0 and s["pct_sgemm"] > 0
        assert set(r["ratios"]) == {"scikit-learn"} and r["ratios"]["scikit-learn"] > 0
    rates = results["sgemm_rates"]  # measured before the first workload and after each
    assert len(rates) == len(WORKLOADS) + 1 and min(rates) <= results["sgemm_gflops"] <= max(rates)
    machine = results["stdout"].splitlines()[0]
    assert f"median of {len(rates)} in this run, {min(rates):.0f}–{max(rates):.0f}" in machine
    assert machine.startswith(f"machine: {results['machine']}")
    assert " kernels, " in machine  # NumPy's BLAS and the kernels it runs, then any override
    cpu = _first_cpu()  # "AMD EPYC" alone would not tell a Zen 2 from a Zen 5
    if "cpu family" in cpu:
        assert f"family {cpu['cpu family']} model {cpu['model']}" in results["machine"]
        flags = cpu["flags"].split()
        widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
        assert widest is None or f", {widest})" in results["machine"]
    for name in BLAS_OVERRIDES:
        assert (f"{name}={os.environ.get(name)}" in machine) == (name in os.environ)
    forced = [name for name in BLAS_OVERRIDES if name in os.environ]
    assert any(f"env -u {' -u '.join(forced)} ..." in note for note in results["notes"]) == bool(
        forced
    )
    for r in results["workloads"]:  # every workload also times its GEMMs alone
        assert r["products_gflops"] > 0 and r["products_pct_sgemm"] > 0
        # the step's own products: never far slower than the whole step (a generous bound)
        assert 0 < r["products_s"] < 10 * r["engines"]["deltaprop"]["max_s"]
        per = "an epoch" if r["algorithm"] == "adam" else "a step"
        row = f"| {r['name']} | deltaprop's GEMMs alone | {r['products_gflops']:.1f} |"
        assert row in results["stdout"] and f"{per}) |" in results["stdout"]
        if r["name"] in ("mnist-shaped", "wide"):
            assert f"its GEMMs alone: {r['products_pct_sgemm']:.0f}%" in results["stdout"]
        if r["algorithm"] == "adam":
            theirs = r["engines"]["scikit-learn"]["median_s"] / r["products_s"]
            assert f"scikit-learn's epoch takes {theirs:.2f}x" in results["stdout"]


def test_engines_compute_the_same_objective(results):
    for r in results["workloads"]:
        J = [s["objective"] for s in r["engines"].values()]
        assert r["objectives_agree"], (r["name"], J)
        # deltaprop and scikit-learn: float32 rounding, even for Adam (same ε placement)
        assert max(J) - min(J) <= 1e-4 * abs(J[0])
        assert 0 < J[0] < 10


def test_memory_workload_is_bounded_and_exact(results):
    memory = results["memory"]
    assert memory["bounded"] and memory["objectives_agree"]
    assert memory["files"]["peak_rss_mb"] < memory["memory"]["peak_rss_mb"]


def test_report_tables_are_printed(results):
    text = results["stdout"]
    assert "| workload | n | net | deltaprop | scikit-learn |" in text
    assert "objectives agree" in text and "DISAGREE" not in text
    assert "targets (medians of this run):" in text
    assert "torch" not in results["engines"]


def _first_cpu() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        key, _, value = line.partition(":")
        if not key.strip():
            break
        fields.setdefault(key.strip(), value.strip())
    return fields
