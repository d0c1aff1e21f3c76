"""The lecture's objective J(θ) = L_S(θ) + (λ/2) Σ_h ‖W^(h)‖²_F and its gradient, chunk by chunk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backprop import Workspace, loss_and_grad_sum
from .errors import ConfigError, DataError
from .network import Network, check_features

DEFAULT_CHUNK = 4096


@dataclass
class Evaluation:
    """What the last call measured: J, the data loss L_S, correct count, n and Σ w_i."""

    objective: float = float("nan")
    loss: float = float("nan")
    correct: int = 0
    n: int = 0
    weight: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")


class Objective:
    """J = (1/n) Σ_i ℓ_i + (λ/2)‖w‖², biases unpenalised.

    g = (1/n) Σ_i ∇ℓ_i + λ[w; 0] is accumulated over row chunks of ``chunk_size``, so
    memory is O(chunk × width) for any n and every chunk size gives the same result.
    With ``sample_weight`` w, L_S = Σ_i w_i ℓ_i / Σ_i w_i (and likewise its gradient).
    The returned gradient is a buffer owned by the objective, overwritten by the next call.
    """

    def __init__(self, network: Network, l2: float = 0.0, chunk_size: int | None = None) -> None:
        self.network = network
        self.l2 = check_l2(l2)
        if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
            raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.chunk_size = int(chunk_size or DEFAULT_CHUNK)
        self.grad = np.zeros_like(network.params)
        self.grad_weights = self.grad[: network.n_weights]
        self._penalty = np.empty(network.n_weights, network.dtype)
        self._workspace: Workspace | None = None
        self.last = Evaluation()

    def value_and_grad(self, X, Y, sample_weight=None) -> tuple[float, np.ndarray]:
        """(J, g) at the network's current parameters."""
        X, Y, weights = check_data(self.network, X, Y, sample_weight)
        return self.evaluate(X, Y, with_grad=True, sample_weight=weights)

    def value(self, X, Y, sample_weight=None) -> float:
        """J at the network's current parameters."""
        X, Y, weights = check_data(self.network, X, Y, sample_weight)
        return self.evaluate(X, Y, with_grad=False, sample_weight=weights)[0]

    def evaluate(
        self, X, Y, with_grad: bool = True, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """(J, g) for already validated arrays; the loop ``fit`` runs."""
        net, n = self.network, len(X)
        rows = min(n, self.chunk_size)
        if self._workspace is None or self._workspace.rows < rows:
            self._workspace = Workspace(net, rows)
        ws = self._workspace
        loss = 0.0
        correct = 0
        grad = self.grad if with_grad else None
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            weights = None if sample_weight is None else sample_weight[start:stop]
            chunk_loss, chunk_correct = loss_and_grad_sum(
                net, X[start:stop], Y[start:stop], grad, ws, with_grad and start > 0, weights
            )
            loss += chunk_loss
            correct += chunk_correct
        total = n if sample_weight is None else float(sample_weight.sum())
        loss /= total
        w = net.params[: net.n_weights]
        J = loss + 0.5 * self.l2 * float(np.vdot(w, w)) if self.l2 else loss
        if with_grad:
            self.grad *= 1.0 / total
            if self.l2:
                np.multiply(w, self.l2, out=self._penalty)
                self.grad_weights += self._penalty
        self.last = Evaluation(J, loss, correct, n, total)
        return J, self.grad


def check_l2(l2: float) -> float:
    """λ ≥ 0 and finite."""
    try:
        value = float(l2)
    except (TypeError, ValueError):
        raise ConfigError(f"l2 must be a number, got {l2!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ConfigError(f"l2 (λ) must be a finite number ≥ 0, got {l2!r}")
    return value


def check_data(network: Network, X, Y, sample_weight=None):
    """Validated (X, Y, w): X (n × d), targets for the network's output (integer labels
    stay labels) and sample weights (None, or n non-negative finite values, cast to the
    network's dtype)."""
    X = check_features(X, network.n_features)
    Y = check_targets(network, Y, len(X))
    if sample_weight is None:
        return X, Y, None
    weights = np.asarray(sample_weight, dtype=network.dtype)
    if weights.shape != (len(X),):
        raise DataError(f"sample_weight must have shape ({len(X)},), got {weights.shape}")
    if not np.isfinite(weights).all() or weights.min() < 0 or weights.sum() <= 0:
        raise DataError("sample_weight must be finite, non-negative and not all zero")
    return X, Y, weights


def check_targets(network: Network, Y, n: int) -> np.ndarray:
    """Ỹ for the output: labels (n,) or one-hot/probabilities (n × K) for softmax,
    (n × K) values for identity (or (n,) when K = 1), 0/1 indicators for sigmoid."""
    if not hasattr(Y, "shape") or not hasattr(Y, "dtype"):
        Y = np.asarray(Y)
    K, output = network.n_outputs, network.output
    if Y.shape[:1] != (n,):
        raise DataError(f"X has {n} rows but Y has shape {Y.shape}; give one target per sample")
    if not np.issubdtype(Y.dtype, np.number) or np.issubdtype(Y.dtype, np.complexfloating):
        raise DataError(f"Y must be numeric, got dtype {Y.dtype}; encode class names as 0..K−1")
    if not np.isfinite(np.sum(Y, dtype=np.float64)) and not np.isfinite(Y).all():
        raise DataError("Y contains NaN or infinity; remove or impute those targets")
    if output.accepts_labels and Y.ndim == 1:
        if not np.issubdtype(Y.dtype, np.integer):
            if not np.array_equal(Y, np.round(Y)):
                raise DataError("class labels must be integers 0..K−1 (or pass one-hot rows)")
            Y = Y.astype(np.intp)
        low, high = int(Y.min()), int(Y.max())
        if low < 0 or high >= K:
            raise DataError(
                f"class labels must lie in 0..{K - 1} for {K} outputs, found {low}..{high}; "
                "relabel the classes or widen the output layer"
            )
        return Y
    if Y.ndim == 1 and K == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] != K:
        raise DataError(f"Y must have shape ({n}, {K}) for {K} outputs, got {Y.shape}")
    if output.name == "softmax":
        sums = Y.sum(axis=1, dtype=np.float64)
        if Y.min() < 0 or not np.allclose(sums, 1.0, atol=1e-4):
            raise DataError("softmax targets must be one-hot (or probability) rows summing to 1")
    if output.name == "sigmoid" and (Y.min() < 0 or Y.max() > 1):
        raise DataError("multi-label targets must be indicators in [0, 1]")
    return Y
