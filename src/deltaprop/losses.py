"""Output pairs (σ_out, ℓ): each computes Σ_i ℓ_i from the logits a^(D) and
overwrites them with the output error δ^(D) = f − Ỹ, which all pairs share.

Targets are either a float matrix Ỹ (m × K) or, for softmax, integer labels (m,).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .activations import ACTIVATIONS
from .errors import ConfigError
from .fused import kernels

_sigmoid = ACTIVATIONS["sigmoid"].function


def _softmax(a, out):
    """f = exp(a − max a) / Σ exp(a − max a), row-wise."""
    np.subtract(a, a.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)


def label_entries(a: np.ndarray, y: np.ndarray, rows: np.ndarray):
    """(flat, index) with ``flat[index]`` the entries a[i, y_i]: a 1-D view of ``a``'s memory
    and positions in it, so picking and updating them is one cheap 1-D take; for a layout
    without a flat view, (a, (rows, y)) for ordinary 2-D indexing."""
    if a.T.flags.c_contiguous:  # the kernel's transposed logits
        index = y.astype(np.intp) * len(a)  # labels may be stored as narrow integers
        index += rows
        return a.T.reshape(-1), index
    if a.flags.c_contiguous:
        return a.reshape(-1), rows * a.shape[1] + y
    return a, (rows, y)


def _softmax_cross_entropy(a, y, rows, weights=None):
    """ℓ = −Σ_k Ỹ_k log f_k = log Σ_k exp a_k − a·Ỹ (log-sum-exp); a ← f − Ỹ."""
    compiled = kernels() if y.ndim == 1 and a.T.flags.c_contiguous else None
    if compiled is not None:  # the kernel's transposed logits: fewer passes, the same bits
        picked, norm = np.empty((2, len(a)), a.dtype)
        compiled.shift_and_pick(a.T, y, picked)
        np.exp(a, out=a)
        compiled.normalize_and_subtract_labels(a.T, y, norm)
    else:
        a -= a.max(axis=1, keepdims=True)
        if y.ndim == 1:
            flat, index = label_entries(a, y, rows)
            picked = flat[index]
        else:
            picked = np.einsum("ij,ij->i", a, y) if weights is not None else np.vdot(a, y)
        np.exp(a, out=a)
        norm = a.sum(axis=1, keepdims=True)
        a /= norm
        if y.ndim == 1:
            flat[index] -= 1
        else:
            a -= y
    log_norm = np.log(norm).ravel()
    if weights is None:
        loss = float(log_norm.sum() - picked.sum())
    else:
        loss = float(np.vdot(weights, log_norm - picked))
    return _weigh_rows(a, weights, loss)


def _sigmoid_cross_entropy(a, y, rows, weights=None):
    """ℓ = Σ_k log(1 + e^{a_k}) − Ỹ_k a_k (binary cross-entropy per output); a ← σ(a) − Ỹ."""
    per_entry = np.logaddexp(0, a)
    per_entry -= a * y
    loss = float(per_entry.sum() if weights is None else np.vdot(weights, per_entry.sum(axis=1)))
    _sigmoid(a, a)
    a -= y
    return _weigh_rows(a, weights, loss)


def _squared_error(a, y, rows, weights=None):
    """ℓ = ½ Σ_k (f_k − Ỹ_k)² with f = a; a ← f − Ỹ."""
    a -= y
    if weights is None:
        return 0.5 * float(np.vdot(a, a))
    loss = 0.5 * float(np.vdot(weights, np.einsum("ij,ij->i", a, a)))
    return _weigh_rows(a, weights, loss)


def _exp(a, out):
    np.exp(a, out=out)


def _half_poisson(a, y, rows, weights=None):
    """ℓ = Σ_k f_k − Ỹ_k a_k + Ỹ_k log Ỹ_k − Ỹ_k with f = e^a: half the Poisson deviance
    (scikit-learn's ``loss="poisson"``, 0 where f = Ỹ), the log link's matched pair;
    a ← f − Ỹ."""
    per_entry = np.zeros_like(a)
    np.log(y, out=per_entry, where=y > 0)  # Ỹ log Ỹ is 0 at Ỹ = 0
    per_entry *= y
    per_entry -= y
    per_entry -= a * y
    np.exp(a, out=a)
    per_entry += a
    loss = float(per_entry.sum() if weights is None else np.vdot(weights, per_entry.sum(axis=1)))
    a -= y
    return _weigh_rows(a, weights, loss)


def _weigh_rows(delta, weights, loss):
    """Sample weights scale each row's output error: δ_i ← w_i δ_i."""
    if weights is not None:
        delta *= weights[:, None]
    return loss


@dataclass(frozen=True)
class OutputLoss:
    """σ_out beside ℓ; ``loss_and_delta(a, Ỹ, rows, w)`` returns Σ w_i ℓ_i and leaves
    δ_i = w_i (f_i − Ỹ_i) in a (w = None means every w_i = 1)."""

    name: str
    function: Callable[[np.ndarray, np.ndarray], None]
    loss_and_delta: Callable[..., float]
    classification: bool
    accepts_labels: bool

    def __repr__(self) -> str:
        return f"OutputLoss({self.name!r})"


OUTPUTS: dict[str, OutputLoss] = {
    "softmax": OutputLoss("softmax", _softmax, _softmax_cross_entropy, True, True),
    "sigmoid": OutputLoss("sigmoid", _sigmoid, _sigmoid_cross_entropy, True, False),
    "identity": OutputLoss(
        "identity", ACTIVATIONS["identity"].function, _squared_error, False, False
    ),
    "exp": OutputLoss("exp", _exp, _half_poisson, False, False),
}


def get_output(name: str | OutputLoss) -> OutputLoss:
    """Look up an output pair: ``"softmax"`` (cross-entropy), ``"identity"`` (squared error),
    ``"sigmoid"`` (independent outputs with binary cross-entropy, for multi-label targets) or
    ``"exp"`` (f = e^a with half the Poisson deviance, for counts and rates ≥ 0)."""
    if isinstance(name, OutputLoss):
        return name
    if name not in OUTPUTS:
        raise ConfigError(f"unknown output {name!r}; choose one of: {', '.join(OUTPUTS)}")
    return OUTPUTS[name]
