"""What the page draws, computed by the network itself: the decision regions (or fitted
surface) over the plotted plane, each hidden unit's output z^(h)_k as a small heat map, and
the weights W^(h) between the units on screen.

Grids hold the plotted inputs; every other input sits at its training mean (0 after
standardisation). Arrays travel as base64 of little-endian bytes.
"""

from __future__ import annotations

import base64

import numpy as np

from .data import Problem

SHOWN_UNITS = 12  # units per layer drawn in the network diagram
UNIT_GRID = 24  # heat-map side of one unit
WORK_LIMIT = 1e9  # grid points × parameters per frame; larger networks get coarser maps


def encode(values: np.ndarray, dtype) -> str:
    """Base64 of the array's bytes in ``dtype`` (little-endian, as typed arrays read them)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def bounds(problem: Problem) -> list[list[float]]:
    """[[lo, hi], ...] for the plotted axes: the data's range with a 10 % margin (for 1-D
    inputs the second axis is the target's range)."""
    columns = [problem.X[:, j] for j in problem.view]
    if len(columns) == 1:
        columns.append(problem.y.astype(float))
    out = []
    for values in columns:
        lo, hi = float(values.min()), float(values.max())
        pad = 0.1 * (hi - lo) or 1.0
        out.append([round(lo - pad, 4), round(hi + pad, 4)])
    return out


def grid_inputs(problem: Problem, side: int) -> np.ndarray:
    """side² rows (row-major, top row = largest second coordinate) or ``side`` rows for 1-D."""
    box = bounds(problem)
    X = np.zeros((side if len(problem.view) == 1 else side * side, problem.X.shape[1]))
    u = np.linspace(*box[0], side)
    if len(problem.view) == 1:
        X[:, problem.view[0]] = u
        return X
    v = np.linspace(box[1][1], box[1][0], side)
    X[:, problem.view[0]] = np.tile(u, side)
    X[:, problem.view[1]] = np.repeat(v, side)
    return X


def grid_side(problem: Problem, n_params: int) -> int:
    if len(problem.view) == 1:
        return 200
    return int(np.clip(np.sqrt(WORK_LIMIT / max(n_params, 1)), 32, 80))


def frame(network, problem: Problem) -> dict:
    """Predictions over the plotted plane, unit heat maps and the shown weights."""
    side = grid_side(problem, network.params.size)
    f = network.forward(grid_inputs(problem, side))
    out: dict = {"side": side, "bounds": bounds(problem)}
    if problem.task == "classification":
        out["classes"] = encode(f.argmax(axis=1), np.uint8)
        out["confidence"] = encode(np.round(f.max(axis=1) * 255), np.uint8)
    else:
        out["surface"] = encode(f[:, 0], "<f4")
    out["units"] = unit_maps(network, problem)
    out["unit_shape"] = [1 if len(problem.view) == 1 else UNIT_GRID, UNIT_GRID]
    out["sizes"] = network.sizes
    out["weights"] = shown_weights(network)
    return out


def unit_maps(network, problem: Problem) -> list[list[str]]:
    """Per hidden layer, the first units' z^(h)_k over a small grid, each scaled by its
    largest |z| to int8 (so every map uses the full colour range)."""
    X = grid_inputs(problem, UNIT_GRID).astype(network.dtype)
    buffers = [np.empty((len(X), m), network.dtype) for m in network.sizes[1:]]
    Z = network.forward_chunk(X, buffers)
    maps = []
    for z in Z[1:-1]:
        shown = z[:, :SHOWN_UNITS]
        scale = np.abs(shown).max(axis=0)
        scale[scale == 0] = 1
        maps.append([encode(np.round(127 * col / s), np.int8) for col, s in zip(shown.T, scale)])
    return maps


def shown_weights(network) -> list[list[list[float]]]:
    """W^(h) restricted to the units on screen (out × in), 4 significant digits."""
    return [
        [[float(f"{w:.4g}") for w in row] for row in W[:SHOWN_UNITS, :SHOWN_UNITS]]
        for W in network.weights
    ]
