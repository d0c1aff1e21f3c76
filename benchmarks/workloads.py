"""The benchmark's workloads: network, data, algorithm and step counts, full and quick.

Every engine runs the lecture's algorithm on the same float32 data from the same θ_0:
full-batch gradient descent θ ← θ − η g on J = L_S + (λ/2)‖w‖² (``gd``), or one epoch of
Adam on unshuffled mini-batches (``adam``). ``gemm_flops`` counts what the issue counts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

import deltaprop as dp
from deltaprop import datasets


@dataclass(frozen=True)
class Workload:
    """One row of the benchmark table."""

    name: str
    n: int
    sizes: tuple[int, ...]
    activation: str
    output: str  # "softmax" or "identity"
    steps: int  # full-batch steps per timed trial (epochs for "adam")
    trials: int
    algorithm: str = "gd"  # "gd" or "adam"
    learning_rate: float = 0.05
    l2: float = 1e-4
    batch_size: int | None = None

    @property
    def net(self) -> str:
        return "-".join(map(str, self.sizes)) + f" {self.activation}"

    @property
    def gemm_flops(self) -> float:
        """Forward + backward GEMM FLOPs of one pass over the data: 2·n·in·out each for the
        forward product, the weight gradient and the input delta (skipped on the first layer)."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        per_row = sum((2 if h == 0 else 3) * 2 * i * o for h, (i, o) in enumerate(pairs))
        return float(per_row) * self.n

    def network(self) -> dp.Network:
        """θ_0, shared by every engine (deltaprop's initialisation, seed 0)."""
        return dp.Network(list(self.sizes), self.activation, self.output, "float32", seed=0)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """(X float32 n × d, y: int64 labels or float32 n × K targets), deterministic."""
        rng = np.random.default_rng(1)
        d, K = self.sizes[0], self.sizes[-1]
        if self.name == "toy":
            ds = datasets.load("moons", n=self.n, seed=0)
            return ds.X.astype(np.float32), ds.y.astype(np.int64)
        if self.name == "digits":
            ds = datasets.load("digits")
            X = np.tile(ds.X, (-(-self.n // len(ds.X)), 1))[: self.n]
            y = np.tile(ds.y, -(-self.n // len(ds.y)))[: self.n]
            return X.astype(np.float32), y.astype(np.int64)
        X = rng.standard_normal((self.n, d), dtype=np.float32)
        teacher = rng.standard_normal((d, K)).astype(np.float32) / np.sqrt(d)
        if self.output == "identity":
            Y = np.sin(X @ teacher) + 0.1 * rng.standard_normal((self.n, K), dtype=np.float32)
            return X, Y.astype(np.float32)
        return X, (X @ teacher).argmax(axis=1).astype(np.int64)


FULL = [
    Workload("toy", 1_000, (2, 16, 16, 2), "tanh", "softmax", 400, 9, learning_rate=0.5),
    Workload("digits", 1_440, (64, 64, 10), "relu", "softmax", 200, 9, learning_rate=0.2),
    Workload("mnist-shaped", 60_000, (784, 256, 128, 10), "relu", "softmax", 3, 5),
    Workload("wide", 16_384, (1024, 2048, 2048, 10), "relu", "softmax", 1, 3),
    Workload("regression", 20_000, (10, 64, 64, 1), "tanh", "identity", 40, 7, learning_rate=0.1),
    Workload(
        "adam-minibatch",
        60_000,
        (784, 256, 128, 10),
        "relu",
        "softmax",
        1,
        5,
        algorithm="adam",
        learning_rate=1e-3,
        batch_size=200,
    ),
]

QUICK_N = {"mnist-shaped": 2_048, "wide": 256, "regression": 2_000, "adam-minibatch": 2_000}
QUICK = [
    replace(w, n=QUICK_N.get(w.name, w.n), steps=max(1, min(w.steps, 20)), trials=3) for w in FULL
]
NAMES = [w.name for w in FULL] + ["memory"]


def select(names: list[str] | None, quick: bool) -> list[Workload]:
    """The workloads named (all by default), in table order."""
    pool = QUICK if quick else FULL
    return [w for w in pool if names is None or w.name in names]
