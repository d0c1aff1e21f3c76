"""Central finite differences of J in float64 against the backpropagated gradient."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network
from .objective import Objective, check_data


@dataclass
class GradcheckReport:
    """Worst relative error |g − ĝ| / max(|g|, |ĝ|, floor) per layer and overall."""

    weights: list[float]
    biases: list[float]
    worst: float
    analytic: np.ndarray
    numeric: np.ndarray

    def passed(self, tolerance: float = 1e-6) -> bool:
        return self.worst <= tolerance

    def __str__(self) -> str:
        lines = [f"{'layer':>5}  {'max rel err W':>14}  {'max rel err b':>14}"]
        for h, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
            lines.append(f"{h:>5}  {w:>14.3e}  {b:>14.3e}")
        lines.append(f"worst relative error: {self.worst:.3e}")
        return "\n".join(lines)


def gradcheck(
    network: Network,
    X,
    Y,
    l2: float = 0.0,
    eps: float = 1e-5,
    floor: float = 1e-7,
    sample_weight=None,
) -> GradcheckReport:
    """Compare ∇J from backpropagation with (J(θ + εe_j) − J(θ − εe_j)) / 2ε for every j,
    on a float64 copy of ``network`` (the network itself is not changed)."""
    net = network.astype("float64")
    X, Y, w = check_data(net, X, Y, sample_weight)
    X = np.asarray(X, dtype=np.float64)
    if Y.dtype.kind == "f":
        Y = np.asarray(Y, dtype=np.float64)
    objective = Objective(net, l2=l2)
    analytic = objective.evaluate(X, Y, sample_weight=w)[1].copy()
    numeric = np.empty_like(analytic)
    theta = net.params
    for j in range(theta.size):
        saved = theta[j]
        theta[j] = saved + eps
        upper = objective.evaluate(X, Y, False, w)[0]
        theta[j] = saved - eps
        lower = objective.evaluate(X, Y, False, w)[0]
        theta[j] = saved
        numeric[j] = (upper - lower) / (2 * eps)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    relative = np.abs(analytic - numeric) / scale
    rel_w, rel_b = net.split(relative)
    weights = [float(r.max()) for r in rel_w]
    biases = [float(r.max()) for r in rel_b]
    return GradcheckReport(weights, biases, float(relative.max()), analytic, numeric)
