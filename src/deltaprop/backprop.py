"""The per-chunk kernel: (θ, X_c, Ỹ_c) → (Σ_i ℓ_i, Σ_i ∇ℓ_i), by backpropagation of δ.

Everything is written into a ``Workspace`` made once per chunk height, so a steady-state
step allocates nothing proportional to the data.
"""

from __future__ import annotations

import numpy as np

from .fused import kernels, outer, times_derivative
from .losses import label_entries
from .network import Network, first_rows, layer_buffer, product_into


class Workspace:
    """Buffers for one block of up to ``rows`` samples: Z^(h) per layer (the last holds the
    logits A^(D)), δ^(h), σ′ scratch, the input/target cast to the working dtype, and a
    gradient-shaped accumulator.

    Z^(h), δ^(h) and σ′ are stored feature-major (m_h × rows in memory, seen as rows × m_h)
    unless ``feature_major`` is False: the forward products are then Aᵀ = W Zᵀ with both
    operands in C order and δ^(h)ᵀ is a C-order matrix for BLAS. The logits are stored so
    either way, for the softmax's row-wise reductions along contiguous memory; after
    row-major hidden layers BLAS writes them C-order into ``logits`` and one copy moves them
    over (faster than Aᵀ = W Zᵀ with Z row-major: 4,096 × 128 → 10, 375 → 280 µs). Measured
    (forward and backward GEMMs) against row-major hidden layers, with multi-threaded BLAS:
    toy 2-16-16-2 at 1,000 rows 47 → 40 µs, digits 64-64-10 at 1,440 300 → 285 µs,
    regression 10-64-64-1 at 8,192 rows 3.1 → 2.6 ms, mnist-shaped 784-256-128-10 at 200
    rows 1.11 → 1.07 ms, at 4,096 rows 18.3 → 18.1 ms; with single-threaded BLAS (each of
    the threads that split a sum) regression at 8,192 rows 3.7 → 3.9 ms and mnist-shaped at
    4,096 34.2 → 34.6 ms, so the split sums keep row-major hidden layers.
    """

    def __init__(self, network: Network, rows: int, feature_major: bool = True) -> None:
        dtype = network.dtype
        self.rows = rows
        widths = network.sizes[1:]

        def hidden() -> list[np.ndarray]:
            return [layer_buffer(rows, m, dtype, feature_major) for m in widths[:-1]]

        self.layers, self.deltas, self.slopes = hidden(), hidden(), hidden()
        self.layers.append(layer_buffer(rows, widths[-1], dtype))
        K = network.n_outputs
        self.logits = None if feature_major or K == 1 else np.empty((rows, K), dtype)
        self.inputs = np.empty((rows, network.n_features), dtype)
        self.targets = np.empty((rows, network.n_outputs), dtype)
        self.row_index = np.arange(rows)
        self.ones = np.ones(rows, dtype)
        self.partial = np.empty_like(network.params)
        self.partial_weights, self.partial_biases = network.split(self.partial)
        self._views: dict = {}
        self._grad: tuple = (None, None, None)

    def views(self, m: int) -> tuple[list, list, list, list]:
        """The buffers for a block of ``m`` rows (cached, contiguous): the forward products'
        targets, Z^(h) as the backward pass reads them, δ^(h), σ′."""
        if m not in self._views:
            if len(self._views) > 4:
                self._views.clear()
            layers, deltas, slopes = (
                [first_rows(buf, m) for buf in group]
                for group in (self.layers, self.deltas, self.slopes)
            )
            products = layers[:-1] + [layers[-1] if self.logits is None else self.logits[:m]]
            self._views[m] = (products, layers, deltas, slopes)
        return self._views[m]

    def grad_views(self, network: Network, grad: np.ndarray) -> tuple[list, list]:
        """``network.split(grad)``, remembered for the last gradient buffer seen."""
        if self._grad[0] is not grad:
            self._grad = (grad, *network.split(grad))
        return self._grad[1], self._grad[2]


def cast_rows(block: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """The block itself when it already has the buffer's dtype, else a cast copy in the buffer."""
    if block.dtype == buffer.dtype and block.flags.c_contiguous:
        return block
    out = buffer[: len(block)].reshape(block.shape) if block.ndim == 1 else buffer[: len(block)]
    np.copyto(out, block, casting="unsafe")
    return out


def loss_and_grad_sum(
    network: Network,
    X: np.ndarray,
    Y: np.ndarray,
    grad: np.ndarray | None,
    workspace: Workspace,
    accumulate: bool = False,
    weights: np.ndarray | None = None,
) -> tuple[float, int]:
    """Σ_i ℓ_i over the block and Σ_i ∇ℓ_i written (or added, if ``accumulate``) into ``grad``.

    δ^(D) = f − Ỹ;  δ^(h−1) = σ′(A^(h−1)) ∘ (δ^(h) W^(h));
    Σ_i ∇_{W^(h)} ℓ_i = δ^(h)ᵀ Z^(h−1);  Σ_i ∇_{b^(h)} ℓ_i = Σ_i δ^(h)_i.
    Optional per-sample ``weights`` w_i give Σ_i w_i ℓ_i and Σ_i w_i ∇ℓ_i.
    With ``grad=None`` only the loss is computed. Also returns the number of correctly
    classified rows (0 for regression).
    """
    m = len(X)
    ws = workspace
    X = cast_rows(X, ws.inputs)
    if Y.ndim == 2 or not network.output.accepts_labels:
        Y = cast_rows(Y, ws.targets)
    rows = ws.row_index[:m]
    products, layers, deltas, slopes = ws.views(m)
    Z = network.forward_chunk(X, products)
    if ws.logits is not None:
        np.copyto(layers[-1], Z[-1])  # into the transposed buffer
        Z[-1] = layers[-1]
    logits = Z[-1]
    correct = _count_correct(network, logits, Y, rows)
    loss = network.output.loss_and_delta(logits, Y, rows, weights)
    if grad is None:
        return loss, correct
    if accumulate:
        out_w, out_b = ws.partial_weights, ws.partial_biases
    else:
        out_w, out_b = ws.grad_views(network, grad)
    ones = ws.ones[:m]
    delta = logits
    for h in range(network.n_layers - 1, -1, -1):
        np.matmul(delta.T, Z[h], out=out_w[h])
        np.matmul(ones, delta, out=out_b[h])  # Σ_i δ_i as a BLAS product: no slow row loop
        if h > 0:
            previous, slope, W = deltas[h - 1], slopes[h - 1], network.weights[h]
            if len(W) == 1:  # one output: δW is an outer product, far faster without BLAS
                outer(delta, W, previous)
            else:
                product_into(delta, W, previous)
            times_derivative(previous, Z[h], network.activations[h - 1], slope)
            delta = previous
    if accumulate:
        grad += ws.partial
    return loss, correct


def _count_correct(network: Network, logits: np.ndarray, Y: np.ndarray, rows: np.ndarray) -> int:
    """Rows whose predicted class (argmax of the logits) matches the target's.

    For labels: rows whose labelled logit equals the row maximum, when no row has a tie for
    the maximum (else argmax, which breaks ties by the first index). NumPy's argmax over a
    short row is several times slower than these whole-array passes; Numba's kernel, when
    there, does the argmax row by row in one call.
    """
    if network.output.name == "softmax":
        compiled = kernels() if Y.ndim == 1 and logits.T.flags.c_contiguous else None
        if compiled is not None:
            return compiled.count_argmax_hits(logits.T, Y)
        if Y.ndim == 1:
            top = logits.max(axis=1)
            flat, index = label_entries(logits, Y, rows)
            if np.count_nonzero(logits == top[:, None]) == len(logits):
                return int(np.count_nonzero(flat[index] == top))
        truth = Y if Y.ndim == 1 else Y.argmax(axis=1)
        return int(np.count_nonzero(logits.argmax(axis=1) == truth))
    if network.output.name == "sigmoid":
        return int(np.count_nonzero(((logits > 0) == (Y > 0.5)).all(axis=1)))
    return 0
