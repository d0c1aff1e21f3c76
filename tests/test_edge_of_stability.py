"""The edge-of-stability example in a reduced size: 200 digits, 2×24 tanh, one η."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "edge_of_stability.py"


def load_example():
    spec = importlib.util.spec_from_file_location("edge_of_stability", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sharpness_rises_to_two_over_eta_and_hovers_there(tmp_path, capsys):
    figure = tmp_path / "eos.png"
    argv = ["--dataset", "digits", "--n", "200", "--width", "24", "--steps", "600"]
    argv += ["--every", "10", "--etas", "0.15", "--output", str(figure)]
    (row,) = load_example().main(argv)
    threshold = row["threshold"]
    assert threshold == pytest.approx(2 / 0.15)
    # progressive sharpening: from well below 2/η up to it ...
    assert row["min_sharpness"] < 0.85 * threshold <= threshold <= row["max_sharpness"]
    # ... then the edge of stability: λ_max stays near 2/η while the loss keeps falling,
    # though not monotonically
    assert 0.95 < row["late_ratio"] < 1.1
    assert row["max_sharpness"] < 1.3 * threshold
    assert row["loss_increases"] > 10
    assert row["final_loss"] < 0.1 * row["initial_loss"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "figure saved" in capsys.readouterr().out
